"""The lab's database as components `harness lab up` starts: etcd (a member per zone),
Patroni with PostgreSQL (a member per zone), the Prometheus community's
postgres_exporter beside each member (Debian's prometheus-postgres-exporter), and the
wait for the replicas Patroni clones.
Layout, timings and replication are described in :mod:`harness.lab.db`."""
from __future__ import annotations

import os

import yaml

from harness.lab import procs
from harness.lab.component import Component, Health
from harness.lab.install import ensure_patroni
from harness.lab.db import (
    KEEPALIVE_COUNT,
    KEEPALIVE_IDLE,
    KEEPALIVE_INTERVAL,
    APP_DB,
    APP_PASSWORD,
    APP_USER,
    LOOP_WAIT,
    PG_BIN,
    REPLICATION_PASSWORD,
    RETRY_TIMEOUT,
    SUPERUSER_PASSWORD,
    TTL,
    _chown_tree,
    _get_json,
    cluster_state,
    data_dir,
    dsn,
    keepalives_on,
    ensure_traversable,
    etcd_url,
    member_name,
    primary,
    proc_name,
    replicas_streaming,
    socket_dir,
    start_member,
    stop_member,
    zone_of,
)


class Etcd(Component):
    """One etcd member per zone (the DCS Patroni keeps its leader key in)."""

    name = "etcd"

    def _argv(self, zone: str) -> list[str]:
        cfg = self.cfg
        ip = cfg.zone_ip(zone)
        cluster = ",".join(f"etcd-{z}=http://{cfg.zone_ip(z)}:{cfg.port('etcd-peer')}" for z in cfg.zones)
        return [
            "etcd",
            "--name", f"etcd-{zone}",
            "--data-dir", str(cfg.path("etcd", zone)),
            "--listen-client-urls", f"http://{ip}:{cfg.port('etcd-client')}",
            "--advertise-client-urls", f"http://{ip}:{cfg.port('etcd-client')}",
            "--listen-peer-urls", f"http://{ip}:{cfg.port('etcd-peer')}",
            "--initial-advertise-peer-urls", f"http://{ip}:{cfg.port('etcd-peer')}",
            "--initial-cluster", cluster,
            "--initial-cluster-state", "new",
            "--initial-cluster-token", f"{cfg.prefix}-etcd",
            # Defaults (100 ms heartbeat, 1 s election) suit one machine; keep the
            # footprint small.
            # Pre-vote (the default from etcd 3.5; Debian's 3.4 has it off): without it a
            # member back from a zone loss, its term raised by its lonely elections,
            # deposes the leader and keeps the cluster leaderless for seconds. Measured
            # here: ~5 s without a leader after a 30 s zone cut, longer than Patroni's
            # retry_timeout, so the healthy primary demoted itself and the database
            # failed over 5 s after the zone came BACK.
            "--pre-vote=true",
            "--snapshot-count", "5000",
            # Keep 5 minutes of history (as Kubernetes' API server compacts every 5 min).
            # Without compaction every write Patroni makes (its leader key, ~every 10 s)
            # stays in the MVCC history: a soak measured a member's memory 74 -> 177 MB,
            # and the backend would grow to the quota below ("database space exceeded":
            # Patroni loses its DCS and demotes the primary).
            "--auto-compaction-mode", "periodic",
            "--auto-compaction-retention", "5m",
            "--quota-backend-bytes", str(256 * 1024 * 1024),
            "--log-level", "warn",
        ]

    def start(self) -> None:
        for zone in self.cfg.zones:
            self.cfg.path("etcd").mkdir(parents=True, exist_ok=True)
            procs.start(self.cfg, f"etcd-{zone}", self._argv(zone), netns=self.cfg.netns(zone))
        for zone in self.cfg.zones:
            procs.wait_for(lambda z=zone: self._healthy(z), 30, f"etcd member {zone}",
                           self.cfg, f"etcd-{zone}")

    def _healthy(self, zone: str) -> bool:
        return _get_json(etcd_url(self.cfg, zone) + "/health").get("health") in ("true", True)

    def stop(self) -> None:
        for zone in self.cfg.zones:
            procs.stop(self.cfg, f"etcd-{zone}")

    def health(self) -> list[Health]:
        out = []
        for zone in self.cfg.zones:
            try:
                ok = self._healthy(zone)
                detail = "healthy" if ok else "unhealthy"
            except Exception as exc:  # noqa: BLE001
                ok, detail = False, f"not answering ({type(exc).__name__})"
            out.append(Health(f"etcd-{zone}", etcd_url(self.cfg, zone), ok, detail))
        return out

    def prometheus_jobs(self) -> list[dict]:
        return [{
            "job_name": "etcd",
            "static_configs": [{"targets": [f"{self.cfg.zone_ip(z)}:{self.cfg.port('etcd-client')}" for z in self.cfg.zones]}],
        }]


# -- Patroni / PostgreSQL --------------------------------------------------------------
POST_BOOTSTRAP = """#!/bin/sh
# Run once by Patroni on the new cluster (argument: a superuser connection string).
set -e
psql "$1" -v ON_ERROR_STOP=1 -c "CREATE ROLE {user} LOGIN PASSWORD '{password}'"
psql "$1" -v ON_ERROR_STOP=1 -c "CREATE DATABASE {db} OWNER {user}"
"""


class Patroni(Component):
    """PostgreSQL 15 members managed by Patroni, one per zone."""

    name = "patroni"

    def member_config(self, zone: str) -> dict:
        cfg = self.cfg
        ip = cfg.zone_ip(zone)
        pg_port = cfg.port("postgres")
        from harness.lab.backup import archive_command  # local import: backup imports db

        return {
            "scope": f"{cfg.prefix}-pg",
            "namespace": "/harness/",
            "name": member_name(zone),
            "log": {"level": "WARNING", "format": "%(asctime)s %(levelname)s: %(message)s"},
            "restapi": {"listen": f"{ip}:{cfg.port('patroni')}", "connect_address": f"{ip}:{cfg.port('patroni')}"},
            "etcd3": {"hosts": [f"{cfg.zone_ip(z)}:{cfg.port('etcd-client')}" for z in cfg.zones],
                      "protocol": "http"},
            "bootstrap": {
                "dcs": {
                    "ttl": TTL,
                    "loop_wait": LOOP_WAIT,
                    "retry_timeout": RETRY_TIMEOUT,
                    "maximum_lag_on_failover": 16 * 1024 * 1024,
                    "synchronous_mode": bool(cfg.sync_replication),
                    "postgresql": {
                        "use_pg_rewind": True,
                        "use_slots": True,
                        "parameters": {
                            "max_connections": 60,
                            "wal_level": "replica",
                            "hot_standby": "on",
                            "wal_log_hints": "on",
                            "max_wal_senders": 8,
                            "max_replication_slots": 8,
                            "wal_keep_size": "128MB",
                            "archive_mode": "on",
                            "archive_timeout": "60s",
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
                "post_bootstrap": str(cfg.path("db", "post_bootstrap.sh")),
            },
            "postgresql": {
                "listen": f"{ip}:{pg_port}",
                "connect_address": f"{ip}:{pg_port}",
                "data_dir": str(data_dir(cfg, zone)),
                "bin_dir": str(PG_BIN),
                "pgpass": str(cfg.path("db", zone, "pgpass")),
                # New replicas clone with an immediate checkpoint: a spread one waits
                # minutes after the bootstrap's CREATE DATABASE.
                "basebackup": [{"checkpoint": "fast"}],
                "authentication": {
                    "superuser": {"username": "postgres", "password": SUPERUSER_PASSWORD},
                    "replication": {"username": "replicator", "password": REPLICATION_PASSWORD},
                    "rewind": {"username": "postgres", "password": SUPERUSER_PASSWORD},
                },
                "pg_hba": [
                    "local all all trust",
                    "host all all 127.0.0.1/32 scram-sha-256",
                    f"host all all {cfg.subnet}.0/24 scram-sha-256",
                    f"host replication replicator {cfg.subnet}.0/24 scram-sha-256",
                    "host replication replicator 127.0.0.1/32 scram-sha-256",
                ],
                # Local parameters: this member's own socket directory (all members share
                # one port number on different addresses) and its own pg1-path for WAL
                # archiving. Kept small: 2 cores and 3 members on one machine.
                "parameters": {
                    "unix_socket_directories": str(socket_dir(cfg, zone)),
                    "archive_command": archive_command(cfg, zone),
                    "shared_buffers": "16MB",
                    "work_mem": "2MB",
                    "maintenance_work_mem": "16MB",
                    "max_wal_size": "256MB",
                    "min_wal_size": "32MB",
                    "checkpoint_timeout": "5min",
                    "effective_cache_size": "64MB",
                    "logging_collector": "off",
                    "log_min_messages": "warning",
                    "log_line_prefix": "%m [%p] ",
                    # A peer that vanished during a zone cut (its FIN dropped or rejected)
                    # is found by TCP keepalives within 5 + 3 x 2 s, instead of the
                    # kernel's 2 h: otherwise every cut leaves idle backends until
                    # max_connections runs out.
                    **({"tcp_keepalives_idle": KEEPALIVE_IDLE,
                        "tcp_keepalives_interval": KEEPALIVE_INTERVAL,
                        "tcp_keepalives_count": KEEPALIVE_COUNT} if keepalives_on() else {}),
                },
            },
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False},
        }

    def write_configs(self) -> None:
        cfg = self.cfg
        ensure_traversable(cfg)
        root = cfg.path("db")
        root.mkdir(parents=True, exist_ok=True)
        script = root / "post_bootstrap.sh"
        script.write_text(POST_BOOTSTRAP.format(user=APP_USER, password=APP_PASSWORD, db=APP_DB))
        script.chmod(0o755)
        for zone in cfg.zones:
            d = cfg.path("db", zone)
            d.mkdir(parents=True, exist_ok=True)
            socket_dir(cfg, zone).mkdir(parents=True, exist_ok=True)
            (d / "patroni.yml").write_text(yaml.safe_dump(self.member_config(zone), sort_keys=False))
        _chown_tree(root)
        os.chmod(root, 0o755)

    def start(self) -> None:
        ensure_patroni(verbose=False)
        from harness.lab.backup import write_config as write_backup_config

        write_backup_config(self.cfg)
        self.write_configs()
        for zone in self.cfg.zones:
            start_member(self.cfg, zone)
        procs.wait_for(lambda: primary(self.cfg), 60, "PostgreSQL primary (Patroni)",
                       self.cfg, proc_name(self.cfg.zones[0]))
        p = primary(self.cfg)
        procs.wait_for(lambda: self._app_db_ready(), 30, "database 'harness'", self.cfg, proc_name(zone_of(p)))
        # WAL archiving (and so every backup) needs the pgBackRest stanza. The first
        # full backup runs in the background while the rest of the lab starts;
        # DbReady (after the service) waits for it and for the replicas.
        from harness.lab.backup import ensure_stanza, start_first_full

        ensure_stanza(self.cfg)
        start_first_full(self.cfg)

    def wait_replicas(self) -> None:
        """Wait until every other member streams (and, in synchronous mode, one is the
        synchronous standby)."""
        want = len(self.cfg.zones) - 1
        p = primary(self.cfg)
        procs.wait_for(lambda: len(replicas_streaming(self.cfg)) >= want, 90,
                       f"{want} PostgreSQL replicas streaming", self.cfg, proc_name(self.cfg.zones[-1]))
        if self.cfg.sync_replication and want:
            procs.wait_for(self._sync_standby, 30, "a synchronous standby", self.cfg,
                           proc_name(zone_of(p) if p else self.cfg.zones[0]))

    def _sync_standby(self) -> bool:
        state = cluster_state(self.cfg) or {}
        return any(m.get("role") == "sync_standby" for m in state.get("members", []))

    def _app_db_ready(self) -> bool:
        import psycopg

        with psycopg.connect(dsn(self.cfg), autocommit=True) as conn:
            conn.execute("SELECT 1")
        return True

    def stop(self) -> None:
        # Replicas first, then the primary, so that no failover starts on the way down.
        p = primary(self.cfg, timeout=0.5)
        order = [z for z in self.cfg.zones if member_name(z) != p] + ([zone_of(p)] if p else [])
        for zone in order:
            stop_member(self.cfg, zone)

    def health(self) -> list[Health]:
        state = cluster_state(self.cfg) or {"members": []}
        seen = {m["name"]: m for m in state.get("members", [])}
        out = []
        for zone in self.cfg.zones:
            name = member_name(zone)
            m = seen.get(name)
            addr = f"{self.cfg.zone_ip(zone)}:{self.cfg.port('postgres')} (REST :{self.cfg.port('patroni')})"
            if not m:
                out.append(Health(name, addr, False, "not in the cluster (down?)"))
                continue
            role, st = m.get("role"), m.get("state")
            ok = st in ("running", "streaming")
            lag = m.get("lag")
            detail = f"{role}, {st}, timeline {m.get('timeline')}" + (f", lag {lag}" if lag not in (None, 0) else "")
            out.append(Health(name, addr, ok, detail))
        mode = "synchronous" if self.cfg.sync_replication else "asynchronous"
        out.append(Health("postgres primary", f"127.0.0.1:{self.cfg.port('haproxy-db')}",
                          primary(self.cfg) is not None, f"{primary(self.cfg) or 'none'} ({mode} replication)"))
        return out

    def prometheus_jobs(self) -> list[dict]:
        return [{
            "job_name": "patroni",
            "metrics_path": "/metrics",
            "static_configs": [
                {"targets": [f"{self.cfg.zone_ip(z)}:{self.cfg.port('patroni')}"], "labels": {"member": member_name(z), "zone": z}}
                for z in self.cfg.zones
            ],
        }]

    def haproxy_sections(self) -> str:
        HAPROXY_KEEPALIVES = (f"    option clitcpka\n    option srvtcpka\n    clitcpka-idle {KEEPALIVE_IDLE}s\n"
                              f"    clitcpka-intvl {KEEPALIVE_INTERVAL}s\n    clitcpka-cnt {KEEPALIVE_COUNT}\n"
                              f"    srvtcpka-idle {KEEPALIVE_IDLE}s\n    srvtcpka-intvl {KEEPALIVE_INTERVAL}s\n"
                              f"    srvtcpka-cnt {KEEPALIVE_COUNT}\n")
        cfg = self.cfg
        servers = "\n".join(
            f"    server {member_name(z)} {cfg.zone_ip(z)}:{cfg.port('postgres')} check port {cfg.port('patroni')}"
            for z in cfg.zones
        )
        return f"""
# Read-write database endpoint: whichever member answers 200 on Patroni's /primary.
listen db-rw
    bind 127.0.0.1:{cfg.port('haproxy-db')}
    mode tcp
    option tcplog
    timeout client 1h
    timeout server 1h
    # Keepalives on both sides: a session whose client (Toxiproxy, the service behind
    # it) or server (a member in a cut zone) died without a word is closed within
    # seconds, not after the 1 h idle time-out.
{HAPROXY_KEEPALIVES if keepalives_on() else ""}    option httpchk GET /primary
    http-check expect status 200
    default-server inter 1s fastinter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
{servers}
"""

    def service_args(self) -> dict[str, str]:
        return {"db": dsn(self.cfg, via="toxiproxy")}


class PostgresExporter(Component):
    """postgres_exporter beside every member, in its zone: connections (pg_stat_activity)
    against max_connections, for seed 002's "DB connections > 80 % of max" alert.

    One exporter per member, not one for all: a cut zone loses its member's series with
    the member, as a real per-host exporter would."""

    name = "postgres-exporter"
    BINARY = "prometheus-postgres-exporter"

    def _dsn(self, zone: str) -> str:
        # lib/pq's URL form: libpq's keepalive keywords in dsn() are unknown to it.
        return (f"postgresql://postgres:{SUPERUSER_PASSWORD}@{self.cfg.zone_ip(zone)}:{self.cfg.port('postgres')}"
                f"/postgres?sslmode=disable&connect_timeout=3&application_name=postgres_exporter")

    def _url(self, zone: str) -> str:
        return f"http://{self.cfg.zone_ip(zone)}:{self.cfg.port('postgres-exporter')}/metrics"

    def start(self) -> None:
        import shutil

        if shutil.which(self.BINARY) is None:
            from harness.errors import EnvironmentNotReady

            raise EnvironmentNotReady(f"{self.BINARY} is not installed (Debian package prometheus-postgres-exporter; "
                                      f"`./dev.sh setup` installs it)")
        for zone in self.cfg.zones:
            argv = [self.BINARY, f"--web.listen-address={self.cfg.zone_ip(zone)}:{self.cfg.port('postgres-exporter')}",
                    "--log.level=warn", f"--constantLabels=member={member_name(zone)}"]
            procs.start(self.cfg, f"postgres-exporter-{zone}", argv, netns=self.cfg.netns(zone),
                        env={"DATA_SOURCE_NAME": self._dsn(zone)})
        for zone in self.cfg.zones:
            procs.wait_for(lambda z=zone: self._answers(z), 20, f"postgres_exporter in zone {zone}",
                           self.cfg, f"postgres-exporter-{zone}")

    def _answers(self, zone: str) -> bool:
        import urllib.request

        with urllib.request.urlopen(self._url(zone), timeout=2) as r:
            return b"pg_up" in r.read()

    def stop(self) -> None:
        for zone in self.cfg.zones:
            procs.stop(self.cfg, f"postgres-exporter-{zone}")

    def health(self) -> list[Health]:
        out = []
        for zone in self.cfg.zones:
            try:
                ok, detail = self._answers(zone), "answering"
            except Exception as exc:  # noqa: BLE001
                ok, detail = False, f"not answering ({type(exc).__name__})"
            out.append(Health(f"postgres-exporter-{zone}", self._url(zone), ok, detail))
        return out

    def prometheus_jobs(self) -> list[dict]:
        return [{
            "job_name": "postgres",
            "static_configs": [
                {"targets": [f"{self.cfg.zone_ip(z)}:{self.cfg.port('postgres-exporter')}"], "labels": {"zone": z}}
                for z in self.cfg.zones
            ],
        }]


class DbReplicas(Component):
    """Runs after the service: waits for the replicas that Patroni clones while the rest
    of the lab starts (cold start overlaps them instead of waiting in line)."""

    name = "patroni-replicas"
    before_service = False

    def start(self) -> None:
        Patroni(self.cfg).wait_replicas()

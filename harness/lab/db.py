"""The lab's database: etcd (a member per zone) and PostgreSQL 15 managed by Patroni.

Layout (every zone has one etcd member and one PostgreSQL member, on the zone's own
address, so that losing a zone loses both at once, and two zones keep a quorum):

  etcd      <zone_ip>:etcd-client / :etcd-peer          <run_dir>/etcd/<zone>
  Patroni   <zone_ip>:patroni (REST: /primary, /replica, /cluster, /metrics)
  Postgres  <zone_ip>:postgres                          <run_dir>/db/<zone>/data
  HAProxy   127.0.0.1:haproxy-db -> whichever member answers 200 on Patroni's /primary

PostgreSQL refuses to run as root: Patroni and PostgreSQL run as the ``postgres`` user
with Patroni from its own venv (``harness.lab.install``).

Patroni timings (the lowest it accepts; measured consequences in lab-facts.md):
  ttl: 20            leader key lifetime. Patroni raises anything below 20 to 20. An
                     unplanned failover (the primary's node dies) therefore takes about
                     ttl: expect ~20 s of write outage.
  loop_wait: 1       seconds between Patroni's HA loops (how fast it reacts).
  retry_timeout: 4   DCS and PostgreSQL operations are retried this long before Patroni
                     demotes itself; must satisfy loop_wait + 2 * retry_timeout <= ttl.
A switchover (planned) takes ~2-3 s of write outage.

Replication: ``synchronous_mode`` when ``cfg.sync_replication`` (RPO 0: a commit is
acknowledged only once a standby has it), asynchronous otherwise (faster, but writes
acknowledged just before a crash can be lost; the checks count them).

Each member's ``archive_command`` carries its own ``--pg1-path`` so that WAL archiving
to pgBackRest keeps working on whichever member is promoted (lab-facts: it failed
after a failover until it did).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import time
import urllib.request
from pathlib import Path

import psutil
import yaml

from harness.errors import EnvironmentNotReady
from harness.lab import procs
from harness.lab.component import Component, Health
from harness.lab.config import LabConfig
from harness.lab.install import PATRONI_VENV, ensure_patroni

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"
STANZA = "lab"
SUPERUSER_PASSWORD = "harness-super"
REPLICATION_PASSWORD = "harness-repl"
APP_USER = APP_PASSWORD = APP_DB = "harness"

# Patroni timings (see the module docstring).
TTL = 20
LOOP_WAIT = 1
RETRY_TIMEOUT = 4


# -- small helpers shared with faults and checks -------------------------------------
def _get_json(url: str, timeout: float = 1.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def member_name(zone: str) -> str:
    return f"pg-{zone}"


def zone_of(member: str) -> str:
    return member.split("-", 1)[1]


def data_dir(cfg: LabConfig, zone: str) -> Path:
    return cfg.path("db", zone, "data")


def socket_dir(cfg: LabConfig, zone: str) -> Path:
    return cfg.path("db", zone, "sock")


def patroni_url(cfg: LabConfig, zone: str) -> str:
    return f"http://{cfg.zone_ip(zone)}:{cfg.port('patroni')}"


def etcd_url(cfg: LabConfig, zone: str) -> str:
    return f"http://{cfg.zone_ip(zone)}:{cfg.port('etcd-client')}"


def proc_name(zone: str) -> str:
    return f"patroni-{zone}"


def cluster_state(cfg: LabConfig, timeout: float = 1.0) -> dict | None:
    """Patroni's /cluster as seen by the first member that answers (None if none does)."""
    for zone in cfg.zones:
        try:
            return _get_json(patroni_url(cfg, zone) + "/cluster", timeout)
        except Exception:  # noqa: BLE001 - try the next member
            continue
    return None


def member_roles(cfg: LabConfig, timeout: float = 0.5) -> dict[str, dict]:
    """Each member's own view (GET /patroni) keyed by member name; unreachable ones omitted."""
    out: dict[str, dict] = {}
    for zone in cfg.zones:
        try:
            out[member_name(zone)] = _get_json(patroni_url(cfg, zone) + "/patroni", timeout)
        except Exception:  # noqa: BLE001
            continue
    return out


def primary(cfg: LabConfig, timeout: float = 1.0) -> str | None:
    """Name of the current primary (leader) member, or None."""
    state = cluster_state(cfg, timeout)
    if not state:
        return None
    for m in state.get("members", []):
        if m.get("role") in ("leader", "master", "primary") and m.get("state") == "running":
            return m["name"]
    return None


def replicas_streaming(cfg: LabConfig) -> list[str]:
    state = cluster_state(cfg) or {}
    return [
        m["name"] for m in state.get("members", [])
        if m.get("role") in ("replica", "sync_standby", "standby_leader", "quorum_standby")
        and m.get("state") in ("streaming", "running")
    ]


def dsn(cfg: LabConfig, zone: str | None = None, *, via: str = "direct", dbname: str = APP_DB) -> str:
    """libpq conninfo. via="direct" (a member, default the primary), "haproxy" or "toxiproxy"."""
    if via == "toxiproxy":
        host, port = cfg.host_ip, cfg.port("toxi-db")
    elif via == "haproxy":
        host, port = "127.0.0.1", cfg.port("haproxy-db")
    else:
        if zone is None:
            p = primary(cfg)
            if p is None:
                raise EnvironmentNotReady("no PostgreSQL primary right now (Patroni reports none)")
            zone = zone_of(p)
        host, port = cfg.zone_ip(zone), cfg.port("postgres")
    user, password = (APP_USER, APP_PASSWORD) if dbname == APP_DB else ("postgres", SUPERUSER_PASSWORD)
    return f"host={host} port={port} dbname={dbname} user={user} password={password} connect_timeout=2"


def synchronous(cfg: LabConfig) -> bool | None:
    """Whether the cluster runs in synchronous_mode now (Patroni's dynamic config)."""
    for zone in cfg.zones:
        try:
            return bool(_get_json(patroni_url(cfg, zone) + "/config").get("synchronous_mode"))
        except Exception:  # noqa: BLE001
            continue
    return None


def set_synchronous(cfg: LabConfig, on: bool, timeout: float = 30.0) -> None:
    """Switch synchronous_mode at run time (PATCH /config) and wait until it holds:
    with it on, a sync_standby exists; off, none does."""
    body = json.dumps({"synchronous_mode": bool(on)}).encode()
    for zone in cfg.zones:
        req = urllib.request.Request(patroni_url(cfg, zone) + "/config", data=body, method="PATCH",
                                     headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=5).read()
            break
        except OSError:
            continue
    else:
        raise EnvironmentNotReady("no Patroni member accepted the configuration change")
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = cluster_state(cfg) or {}
        has_sync = any(m.get("role") == "sync_standby" for m in state.get("members", []))
        if has_sync == bool(on):
            return
        time.sleep(0.2)
    raise EnvironmentNotReady(f"synchronous_mode={on} did not take effect within {timeout:.0f}s")


def postmaster_pids(cfg: LabConfig, zone: str) -> list[int]:
    """The member's postmaster and all its children (from postmaster.pid)."""
    try:
        pid = int((data_dir(cfg, zone) / "postmaster.pid").read_text().split()[0])
        proc = psutil.Process(pid)
        if proc.username() != PG_USER or "postgres" not in proc.name():
            return []
        return [pid] + [c.pid for c in proc.children(recursive=True)]
    except (FileNotFoundError, ValueError, IndexError, psutil.Error):
        return []


def kill_member(cfg: LabConfig, zone: str) -> list[int]:
    """SIGKILL Patroni and its PostgreSQL together, as when the node dies. Returns pids."""
    pids: list[int] = []
    ppid = procs.read_pid(cfg, proc_name(zone))
    if ppid:
        try:
            pids += [ppid] + [c.pid for c in psutil.Process(ppid).children(recursive=True)]
        except psutil.Error:
            pids.append(ppid)
    pids += postmaster_pids(cfg, zone)
    pids = list(dict.fromkeys(pids))
    for pid in pids:  # Patroni first, then PostgreSQL: nothing gets to react
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.time() + 5
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.02)
    return pids


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _chown_tree(path: Path, user: str = PG_USER) -> None:
    shutil.chown(path, user, user)
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            try:
                shutil.chown(os.path.join(root, n), user, user)
            except OSError:
                pass


def ensure_traversable(cfg: LabConfig) -> None:
    """The postgres user must reach <run_dir>/db and the pgBackRest repository."""
    p = cfg.root.resolve()
    while p != p.parent:
        try:
            mode = p.stat().st_mode
            if not mode & 0o001:
                os.chmod(p, mode | 0o011)
        except OSError:
            pass
        p = p.parent


# -- etcd ------------------------------------------------------------------------------
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
    option httpchk GET /primary
    http-check expect status 200
    default-server inter 1s fastinter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
{servers}
"""

    def service_args(self) -> dict[str, str]:
        return {"db": dsn(self.cfg, via="toxiproxy")}


class DbReplicas(Component):
    """Runs after the service: waits for the replicas that Patroni clones while the rest
    of the lab starts (cold start overlaps them instead of waiting in line)."""

    name = "patroni-replicas"
    before_service = False

    def start(self) -> None:
        Patroni(self.cfg).wait_replicas()


def start_member(cfg: LabConfig, zone: str) -> int:
    """Start (or leave running) the Patroni member of ``zone``; it starts PostgreSQL."""
    conf = cfg.path("db", zone, "patroni.yml")
    if not conf.exists():
        raise EnvironmentNotReady(f"no Patroni config at {conf}: run `harness lab up`")
    return procs.start(
        cfg, proc_name(zone), [str(PATRONI_VENV / "bin" / "patroni"), str(conf)],
        netns=cfg.netns(zone), user=PG_USER,
        env={"HOME": str(cfg.path("db", zone)), "PATH": f"{PG_BIN}:/usr/bin:/bin"},
        cwd=cfg.path("db", zone),
    )


def stop_member(cfg: LabConfig, zone: str) -> None:
    """Stop a member cleanly (Patroni stops PostgreSQL); kill what is left."""
    procs.stop(cfg, proc_name(zone), timeout=20)
    left = postmaster_pids(cfg, zone)
    if left:
        try:
            os.kill(left[0], signal.SIGINT)  # PostgreSQL's fast shutdown
        except ProcessLookupError:
            pass
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(p) for p in left):
            time.sleep(0.05)
        for p in left:
            if _alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def member_ok(cfg: LabConfig, zone: str, timeout: float = 0.5) -> str | None:
    """None when the member, asked itself (GET /patroni), runs as the primary or as a
    streaming replica; otherwise what it is doing."""
    try:
        view = _get_json(patroni_url(cfg, zone) + "/patroni", timeout)
    except Exception as exc:  # noqa: BLE001
        return f"not answering ({type(exc).__name__})"
    if view.get("state") != "running":
        return str(view.get("state"))
    if view.get("role") in ("primary", "master", "standby_leader"):
        return None
    if view.get("replication_state") != "streaming":
        return f"{view.get('role')}, not streaming ({view.get('replication_state')})"
    return None


def wait_member_running(cfg: LabConfig, zone: str, timeout: float = 60.0) -> bool:
    """True once the member, asked itself, is the primary or a streaming replica."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if member_ok(cfg, zone) is None:
            return True
        time.sleep(0.2)
    return False

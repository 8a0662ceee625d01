"""No lasting damage on the lab: its gauges before the first fault and after recovery.

On by default for every lab experiment (see :mod:`harness.checks.damage`). Each gauge
is read from the component itself, in about a second all together:

  db-connections    application backends busy (not idle) on every PostgreSQL member
  db-backends       all application backends (idle pooled ones too: the pools may grow)
  db-half-open      TCP connections on the database path (service -> Toxiproxy -> HAProxy
                    -> PostgreSQL) open at one end with no socket at the other: both ends
                    live on this machine (host and zone namespaces), so each end's
                    ESTABLISHED socket is looked up at its peer (``ss``), twice 0.5 s apart
                    so that a connection being opened or closed is not counted. A cut that
                    drops the closing packets leaves them at whichever hop it broke
  replication-lag-mb  the largest replica lag Patroni reports (/cluster)
  replicas-streaming  replicas streaming from the primary (fewer is worse)
  replica-restarts  restarts of the api replicas since the last revert (orchestrator
                    /state): a kill restarts its replica on purpose; a crash loop goes on
  memory-mb, open-files  memory (PSS: a page shared by several processes, such as a
                    forked server's code, counted once, split among them; RSS counted it in
                    each) and open file descriptors of every lab process and its children
                    (pid files under the run dir; psutil)
  disk-mb           bytes under the lab's run dir (data, backups, TSDB, logs), except the
                    write-ahead logs that preallocate and recycle fixed-size segments up to a
                    configured bound (PostgreSQL's pg_wal up to max_wal_size, etcd's 64 MB
                    member/wal files up to --max-wals): their size says how much was written
                    lately, and grows in steps of 3 x 64 MB, not what a run left behind;
                    and Prometheus' head (data/wal, data/chunks_head), truncated at every
                    head compaction (2 h blocks): a soak measured it +74 MB in 23 min of
                    runs, the samples of the last hours, not damage. Its compacted blocks count.
  toxics            Toxiproxy toxics on any link (a fault left behind)
  iptables-rules    rules in the zones' zone-loss chains (a cut left behind)
and alerts: firing in Prometheus (/api/v1/alerts) after recovery but not before.
"""
from __future__ import annotations

import json
import os
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import psutil

from harness.checks.damage import Gauge, LastingDamage
from harness.targets import registry

MB = 1024 * 1024


@registry.check("lab")
class LabLastingDamage(LastingDamage):
    default = True
    #: alerts that record an event and fire for a fixed time after it by design (the lab
    #: plan's "a failover happened"): still firing after recovery is not damage
    EVENT_ALERTS = ("DatabaseFailoverHappened",)
    sources = ("pg_stat_activity on every member, TCP sockets (ss) in the host and zone namespaces, Patroni /cluster, orchestrator "
               "/state, /proc of the lab's processes, the run dir, Toxiproxy API, zone iptables chains, "
               "Prometheus /api/v1/alerts")
    gauges = (
        # The service's pools (16 a replica) grow under latency and shrink after psycopg_pool's
        # max_idle (10 min): idle pooled backends are no damage; a leak beyond them shows as
        # half-open backends, and busy ones as connections in use.
        Gauge("db-connections", "", 4, "application backends busy (not idle) on the database members"),
        Gauge("db-backends", "", 32, "application backends on the database members, idle or not"),
        Gauge("db-half-open", "", 2, "database-path connections open at one end only (no peer socket)"),
        Gauge("replication-lag-mb", "MB", 16, "largest replica lag (Patroni)"),
        Gauge("replicas-streaming", "", 0, "DB replicas streaming", worse="down"),
        Gauge("replica-restarts", "", 0, "api replica restarts after the last revert (orchestrator)",
              baseline="revert"),
        Gauge("memory-mb", "MB", "25%", "memory (PSS) of the lab's processes"),
        Gauge("open-files", "", "25%", "open file descriptors of the lab's processes"),
        Gauge("disk-mb", "MB", 256, "disk used under the lab's run dir"),
        Gauge("toxics", "", 0, "Toxiproxy toxics left on any link"),
        Gauge("iptables-rules", "", 0, "rules left in the zones' zone-loss chains"),
    )

    def read(self) -> dict[str, float]:
        cfg = self.target.cfg
        readers = {"processes": self._processes, "disk": self._disk, "toxics": self._toxics,
                   "rules": self._rules, "restarts": self._restarts}
        if cfg.with_db:
            readers["db"] = self._db
        with ThreadPoolExecutor(len(readers)) as pool:
            futures = {k: pool.submit(f) for k, f in readers.items()}
            out: dict[str, float] = {}
            errors = []
            for k, fut in futures.items():
                try:
                    out.update(fut.result())
                except Exception as exc:  # noqa: BLE001 - collected: fail closed below
                    errors.append(f"{k}: {exc or type(exc).__name__}")
        if errors:
            raise RuntimeError("; ".join(errors))
        if not cfg.with_db:  # nothing to leak: the service keeps its data in memory
            out.update({"db-connections": 0, "db-backends": 0, "db-half-open": 0, "replication-lag-mb": 0, "replicas-streaming": 0})
        return out

    # -- the readers ----------------------------------------------------------------
    def _db(self) -> dict[str, float]:
        import psycopg

        from harness.lab import db

        cfg = self.target.cfg
        server = busy = 0
        for zone in cfg.zones:
            with psycopg.connect(db.dsn(cfg, zone, dbname="postgres"), autocommit=True, connect_timeout=2) as conn:
                n, b = conn.execute("SELECT count(*), count(*) FILTER (WHERE state <> 'idle') FROM pg_stat_activity "
                                    "WHERE usename = %s AND backend_type = 'client backend'", (db.APP_USER,)).fetchone()
            server += int(n)
            busy += int(b)
        state = db.cluster_state(cfg, timeout=2)
        if not state:
            raise RuntimeError("no Patroni member answers /cluster")
        replicas = [m for m in state.get("members", []) if m.get("role") not in ("leader", "master", "primary",
                                                                                   "standby_leader")]
        streaming = [m for m in replicas if m.get("state") in ("streaming", "running")]
        lags = [m.get("lag") for m in streaming]
        if any(not isinstance(x, (int, float)) for x in lags):
            lag = max((x for x in lags if isinstance(x, (int, float))), default=0) / MB
            # Patroni says "unknown" for a replica it cannot measure: count it as not streaming
            streaming = [m for m in streaming if isinstance(m.get("lag"), (int, float))]
        else:
            lag = max(lags, default=0) / MB
        first = _orphan_sockets(cfg)
        time.sleep(0.5)
        half_open = first & _orphan_sockets(cfg)
        return {"db-connections": busy, "db-backends": server, "db-half-open": len(half_open),
                "replication-lag-mb": lag, "replicas-streaming": len(streaming)}

    def _processes(self) -> dict[str, float]:
        from harness.lab import procs

        cfg = self.target.cfg
        mem = fds = 0
        seen: set[int] = set()
        names = procs.names(cfg)
        if not names:
            raise RuntimeError(f"no lab process has a pid file under {cfg.path('pids')}")
        for name in names:
            pid = procs.read_pid(cfg, name)
            if pid is None:
                continue  # stopped on purpose (e.g. a component the lab runs without)
            try:
                top = psutil.Process(pid)
                family = [top] + top.children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            for p in family:
                if p.pid in seen:
                    continue
                seen.add(p.pid)
                try:
                    with p.oneshot():
                        mem += p.memory_full_info().pss
                        fds += p.num_fds()
                except psutil.NoSuchProcess:
                    continue
        return {"memory-mb": mem / MB, "open-files": fds}

    def _disk(self) -> dict[str, float]:
        total = 0
        for dirpath, dirs, files in os.walk(self.target.cfg.root):
            dirs[:] = [d for d in dirs if not _bounded_wal(dirpath, d)]
            for f in files:
                try:
                    total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
                except FileNotFoundError:
                    continue  # a WAL segment recycled while we walked
        return {"disk-mb": total / MB}

    def _toxics(self) -> dict[str, float]:
        from harness.lab.toxiproxy import Client

        return {"toxics": sum(len(v) for v in Client(self.target.cfg).all_toxics().values())}

    def _rules(self) -> dict[str, float]:
        from harness.lab import network, sh

        cfg = self.target.cfg
        n = 0
        for zone in cfg.zones:
            proc = sh.run("iptables", "-S", network.ZONE_CHAIN, netns=cfg.netns(zone), check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"cannot list zone {zone}'s {network.ZONE_CHAIN} chain: {proc.stderr.strip()}")
            n += sum(1 for r in proc.stdout.splitlines() if r.startswith("-A"))
        return {"iptables-rules": n}

    def _restarts(self) -> dict[str, float]:
        return {"replica-restarts": sum(int(r.get("restarts") or 0)
                                        for r in self.target.orchestrator_state()["replicas"])}

    def read_at_revert(self) -> dict[str, float]:
        return self._restarts()

    def firing_alerts(self) -> set[str] | None:
        url = self.target.prometheus_url
        if not url:
            return None
        try:
            with urllib.request.urlopen(f"{url}/api/v1/alerts", timeout=2) as r:
                data = json.loads(r.read())
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"Prometheus {url}/api/v1/alerts: {exc}") from exc
        out = set()
        for a in data["data"]["alerts"]:
            if a.get("state") == "firing":
                labels = {k: v for k, v in a["labels"].items() if k not in ("alertname", "severity")}
                out.add(a["labels"]["alertname"] + ("{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
                                                    + "}" if labels else ""))
        return out


def _bounded_wal(parent: str, name: str) -> bool:
    """PostgreSQL's pg_wal, etcd's member/wal and Prometheus' head (wal, chunks_head):
    bounded by their own configuration (see the module docstring)."""
    if name == "pg_wal" or (name == "wal" and os.path.basename(parent) == "member"):
        return True
    return name in ("wal", "chunks_head") and parent.endswith(os.path.join("prometheus", "data"))


def _established(netns: str | None) -> set[tuple[str, str]]:
    """(local, peer) of every ESTABLISHED IPv4 TCP socket in a network namespace."""
    from harness.lab import sh

    argv = ["ss", "-H", "-t", "-n", "-4", "state", "established"]
    out = sh.run(*argv, netns=netns).stdout
    pairs = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 4:
            pairs.add((f[2], f[3]))
    return pairs


def _orphan_sockets(cfg) -> set[tuple[str | None, str, str]]:
    """Database-path sockets whose peer socket does not exist: (netns, local, peer)."""
    ports = {str(cfg.port("postgres")), str(cfg.port("haproxy-db")), str(cfg.port("toxi-db"))}
    tables: dict[str | None, set[tuple[str, str]]] = {None: _established(None)}
    ns_of_ip: dict[str, str | None] = {cfg.host_ip: None}
    for zone in cfg.zones:
        tables[cfg.netns(zone)] = _established(cfg.netns(zone))
        ns_of_ip[cfg.zone_ip(zone)] = cfg.netns(zone)
    orphans = set()
    for ns, pairs in tables.items():
        for local, peer in pairs:
            if local.rsplit(":", 1)[1] not in ports and peer.rsplit(":", 1)[1] not in ports:
                continue
            peer_ip = peer.rsplit(":", 1)[0]
            peer_ns = ns if peer_ip.startswith("127.") else ns_of_ip.get(peer_ip, "elsewhere")
            if peer_ns == "elsewhere":
                continue  # not a lab address: not ours to judge
            if (peer, local) not in tables[peer_ns]:
                orphans.add((ns, local, peer))
    return orphans

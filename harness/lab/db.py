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

from harness.errors import EnvironmentNotReady, FaultError
from harness.lab import procs
from harness.lab.config import LabConfig
from harness.lab.install import PATRONI_VENV

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"
STANZA = "lab"
SUPERUSER_PASSWORD = "harness-super"
REPLICATION_PASSWORD = "harness-repl"
APP_USER = APP_PASSWORD = APP_DB = "harness"

#: TCP keepalives of every database connection, server and client side (seconds, count):
#: a peer lost in a zone cut is found within idle + interval x count = 11 s
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 5, 2, 3


def keepalives_on() -> bool:
    """Test-only knob: HARNESS_LAB_TCP_KEEPALIVES=off while a lab starts gives it no TCP
    keepalives on its database hops (the half-open leak back on: tests/lab/test_damage.py)."""
    return os.environ.get("HARNESS_LAB_TCP_KEEPALIVES", "on") != "off"

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
    base = f"host={host} port={port} dbname={dbname} user={user} password={password} connect_timeout=2 "
    if not keepalives_on():
        return base + "keepalives=0"
    return (base + f"keepalives=1 keepalives_idle={KEEPALIVE_IDLE} keepalives_interval={KEEPALIVE_INTERVAL} "
            f"keepalives_count={KEEPALIVE_COUNT}")


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
    """SIGKILL Patroni and its PostgreSQL together, as when the node dies. Returns pids.

    Refuses (FaultError) when Patroni's own process cannot be found while its PostgreSQL
    runs: killing only PostgreSQL is not a node's death (Patroni, still holding the leader
    key, restarts it in place and no failover happens), so the fault would silently test
    something else."""
    pids: list[int] = []
    ppid = procs.read_pid(cfg, proc_name(zone))
    if ppid:
        try:
            pids += [ppid] + [c.pid for c in psutil.Process(ppid).children(recursive=True)]
        except psutil.Error:
            pids.append(ppid)
    elif postmaster_pids(cfg, zone):
        raise FaultError(f"the Patroni process of {member_name(zone)} was not found "
                         f"(pid file {cfg.path('pids', proc_name(zone) + '.pid')}), but its PostgreSQL runs: "
                         "killing PostgreSQL alone would not be the node's death")
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
    make_traversable(cfg.root)


def make_traversable(path: Path) -> None:
    """Let other users (postgres) pass through every directory above ``path``."""
    p = path.resolve()
    while p != p.parent:
        try:
            mode = p.stat().st_mode
            if not mode & 0o001:
                os.chmod(p, mode | 0o011)
        except OSError:
            pass
        p = p.parent


# -- etcd ------------------------------------------------------------------------------
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

"""The full lab, for real: Patroni failover under write load, Toxiproxy latency, alerts
and notifications, pgBackRest, and a clean `lab down`.

They use the session's lab; the teardown test brings up its OWN lab (a sibling of the
session's: see conftest.sibling_config) so that it never collides with it. They break
things on purpose and assert that the checks see it, on behaviour and recorded numbers (never on wall-clock thresholds).
The numbers are printed: run with ``-s`` to read them.

    .venv/bin/python -m pytest tests/lab/test_full_lab.py -s
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest

from harness.checks.base import RunClock
from harness.lab import backup, db
from harness.lab.alerting import load_lab_plan, notifications
from harness.lab.config import LabConfig
from harness.lab.lab import Lab
from harness.lab.toxiproxy import Client
from harness.targets.lab import LabTarget

from .conftest import sibling_config

TOOLS = ["etcd", "haproxy", "prometheus", "prometheus-alertmanager", "pgbackrest"]

pytestmark = [pytest.mark.lab]
# No skip when a tool is missing: on a machine without them these tests must fail,
# or CI would hide a missing install step.


def full_cfg(base: LabConfig) -> LabConfig:
    """A lab of its own, only for the teardown test (it takes the lab down); kept apart
    from the session's lab and its other siblings."""
    prefix = (base.prefix + "5")[:6]
    return sibling_config(base, 5, run_dir=f"/tmp/{prefix}-test/lab")


@pytest.fixture(scope="module")
def full_lab(lab):
    """The session's lab (one lab per test session); conftest keeps it healthy around each test."""
    assert lab.cfg.with_db, "these tests need the full lab (with the database)"
    return lab


@pytest.fixture
def target(full_lab) -> LabTarget:
    return LabTarget(full_lab.cfg)


class WriteLoad:
    """POST /api/orders through the load balancer from a few threads (bounded in time)."""

    def __init__(self, cfg: LabConfig, threads: int = 3, max_seconds: float = 180.0):
        self.url = cfg.load_host + "/api/orders"
        self.stop_at = time.time() + max_seconds
        self.stop_event = threading.Event()
        self.ok = self.failed = 0
        self.threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    def _loop(self) -> None:
        while not self.stop_event.is_set() and time.time() < self.stop_at:
            req = urllib.request.Request(self.url, data=b"{}", method="POST")
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    r.read()
                self.ok += 1
            except Exception:  # noqa: BLE001
                self.failed += 1
                time.sleep(0.05)
            time.sleep(0.01)

    def __enter__(self) -> "WriteLoad":
        for t in self.threads:
            t.start()
        time.sleep(2.0)
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(10)


def run_fault_with_checks(target, kind, params, checks, hold: float = 0.0, after_inject=None):
    """Inject, run checks in threads, revert once the first check is done (+hold)."""
    clock = RunClock(started_at=time.time() - 2.0)
    fault = target.fault(kind, params)
    state = fault.prepare()
    fault.inject(state)
    clock.injected_at = time.time()
    if after_inject:
        after_inject()
    objs = [target.check(k, p) for k, p in checks]
    results: dict[int, object] = {}
    threads = [threading.Thread(target=lambda i=i, c=c: results.__setitem__(i, c.run(clock)), daemon=True)
               for i, c in enumerate(objs)]
    for t in threads:
        t.start()
    threads[0].join(180)
    time.sleep(hold)
    fault.revert(state)
    clock.reverted_at = time.time()
    clock.reverted.set()
    for t in threads:
        t.join(180)
    clock.stop.set()
    return fault, state, [results.get(i) for i in range(len(objs))]


# -- status and backups -------------------------------------------------------------------
def test_status_has_a_row_per_component(full_lab):
    rows = {h.name: h for h in full_lab.status()}
    for name in ("etcd-a", "pg-a", "postgres primary", "haproxy", "toxiproxy", "toxiproxy db",
                 "prometheus", "alertmanager", "webhook receiver", "pgbackrest", "dependency"):
        assert name in rows, f"no status row {name}: {sorted(rows)}"
        assert rows[name].ok, rows[name]
    assert "db-rw: 1 backends up" in rows["haproxy"].detail
    roles = sorted(rows[db.member_name(z)].detail.split(",")[0] for z in full_lab.cfg.zones)
    assert roles.count("leader") == 1
    assert "sync_standby" in roles  # synchronous mode by default


def test_full_backup_listed_after_up_and_incremental_on_demand(full_lab):
    cfg = full_lab.cfg
    info = backup.info(cfg)
    assert any(b["type"] == "full" for b in info["backups"]), info
    assert "full backup" in backup.info_text(cfg)
    entry = backup.backup(cfg, "incr")
    print(f"\nincremental backup {entry['label']} in {entry['seconds']}s")
    assert entry["type"] == "incr"
    assert entry["prior"] is not None
    assert [b["type"] for b in backup.info(cfg)["backups"]][-1] == "incr"


def test_a_lab_kept_past_its_backup_schedule_takes_a_new_full_backup(full_lab, monkeypatch):
    """A lab kept for days (or a CI machine's lab reused the next day) is backed up as its
    plan says: a full backup older than the plan's period is replaced at `lab up`, so
    the plan's "a fresh full backup" precondition holds on it."""
    from harness.lab import procs

    cfg = full_lab.cfg
    fulls = lambda: [b["label"] for b in backup.info(cfg)["backups"] if b["type"] == "full"]  # noqa: E731
    before = fulls()
    backup.start_first_full(cfg)  # the session's full is fresh: nothing to do
    assert not procs.running(cfg, backup.FIRST_FULL) and fulls() == before
    # the plan's period as if a day had gone by since that full backup
    monkeypatch.setattr(backup, "_full_period", lambda cfg: backup.FRESH_MARGIN + 1.0)
    backup.start_first_full(cfg)
    deadline = time.time() + 180
    while procs.running(cfg, backup.FIRST_FULL) and time.time() < deadline:
        time.sleep(0.5)
    after = fulls()
    assert len(after) == len(before) + 1 or (len(after) == len(before) and after[-1] not in before), (before, after)


def test_prometheus_scrapes_patroni_and_loads_generated_rules(full_lab):
    cfg = full_lab.cfg
    with urllib.request.urlopen(cfg.prometheus_url + "/api/v1/rules", timeout=5) as r:
        groups = json.loads(r.read())["data"]["groups"]
    names = {rule["name"] for g in groups for rule in g["rules"]}
    plan = load_lab_plan(cfg)
    assert {a.name for a in plan.alerts} <= names
    deadline = time.time() + 20
    value = None
    while time.time() < deadline:
        q = urllib.parse.quote('sum(patroni_primary{job="patroni"})')
        with urllib.request.urlopen(f"{cfg.prometheus_url}/api/v1/query?query={q}", timeout=5) as r:
            res = json.loads(r.read())["data"]["result"]
        if res:
            value = float(res[0]["value"][1])
            break
        time.sleep(1)
    assert value == 1.0


# -- network latency ------------------------------------------------------------------------
def _time_requests(url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as r:
            r.read()
        out.append(time.perf_counter() - t0)
    return sorted(out)


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _prom_p99(cfg: LabConfig, window: str) -> float | None:
    q = urllib.parse.quote(
        f'histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{{route="/api/orders"}}[{window}])) by (le))')
    with urllib.request.urlopen(f"{cfg.prometheus_url}/api/v1/query?query={q}", timeout=5) as r:
        res = json.loads(r.read())["data"]["result"]
    if not res or res[0]["value"][1] in ("NaN", "+Inf"):
        return None
    return float(res[0]["value"][1])


def test_db_latency_toxic_shows_in_p99_and_reverts_exactly(full_lab, target):
    cfg = full_lab.cfg
    url = cfg.load_host + "/api/orders"
    client = Client(cfg)
    # Someone else's toxic on the same link must survive our revert.
    client.add_toxic("dependency", name="someone-else", type="latency", stream="downstream",
                     attributes={"latency": 1})
    try:
        before = _time_requests(url, 60)
        time.sleep(2)
        prom_before = _prom_p99(cfg, "10s")
        fault = target.fault("network-latency", {"link": "db", "latency": "300ms", "jitter": "0ms"})
        state = fault.prepare()
        fault.inject(state)
        try:
            assert [t["name"] for t in state["toxics"]] == list(client.toxics("db"))
            during = _time_requests(url, 60)
            time.sleep(2)
            prom_during = _prom_p99(cfg, "5s")
        finally:
            fault.revert(state)
        assert fault.verify_reverted(state) == []
        assert client.toxics("db") == {}
        assert "someone-else" in client.toxics("dependency")
        after = _time_requests(url, 40)
    finally:
        client.remove_toxic("dependency", "someone-else")
    shift = _pct(during, 0.99) - _pct(before, 0.99)
    print(f"\nGET /api/orders p50 {_pct(before, .5) * 1000:.0f} -> {_pct(during, .5) * 1000:.0f} ms, "
          f"p99 {_pct(before, .99) * 1000:.0f} -> {_pct(during, .99) * 1000:.0f} ms (shift {shift * 1000:.0f} ms; "
          f"300 ms injected); Prometheus p99 {prom_before} -> {prom_during}; after revert p99 "
          f"{_pct(after, .99) * 1000:.0f} ms")
    # Behaviour: with the toxic every request waits for at least one database round trip
    # delayed by 300 ms (Toxiproxy delays each response chunk by exactly that, no jitter),
    # the service's own histogram sees it (p99 in the 0.3-0.5 s bucket or above), and
    # after the revert most requests are back under it.
    assert min(during) >= 0.3
    assert prom_during is not None and prom_during >= 0.3
    assert _pct(after, 0.5) < 0.3


def test_latency_revert_works_from_a_fresh_process(full_lab, target):
    """The journaled state alone is enough to revert (as `harness cleanup` does after a crash)."""
    fault = target.fault("network-latency", {"link": "dependency", "latency": "200ms", "direction": "both",
                                             "toxicity": 0.5})
    state = fault.prepare()
    fault.inject(state)
    assert len(Client(full_lab.cfg).toxics("dependency")) == 2
    code = (
        "import json,sys\n"
        "from harness.targets.lab import LabTarget\n"
        f"t = LabTarget.open({full_lab.cfg.run_dir!r})\n"
        "f = t.fault('network-latency', {'link': 'dependency', 'latency': '200ms'})\n"
        "state = json.loads(sys.argv[1])\n"
        "f.revert(state); f.revert(state)\n"  # idempotent
        "print(json.dumps(f.verify_reverted(state)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, json.dumps(state)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    assert Client(full_lab.cfg).toxics("dependency") == {}


def test_unknown_link_is_refused_before_anything_acts(target):
    from harness.errors import InvalidInput

    with pytest.raises(InvalidInput, match="links through Toxiproxy: db, dependency"):
        target.fault("network-latency", {"link": "cache", "latency": "100ms"}).prepare()


# -- dependency down, alerts and notifications ----------------------------------------------------
def test_dependency_down_fires_its_alert_and_notifies_its_severity(full_lab, target):
    cfg = full_lab.cfg
    plan = load_lab_plan(cfg)
    rule = plan.alert("DependencyDown")
    receiver = plan.routing.receiver_for(rule.severity)
    fault, state, (fires, never, silent) = run_fault_with_checks(
        target, "dependency-down", {},
        [("alert-fires", {"alert": "DependencyDown", "within": "30s"}),
         # An alert this fault cannot cause must make alert-fires FAIL, with its reason.
         ("alert-fires", {"alert": "DatabasePrimaryMissing", "within": "5s"}),
         ("alert-silent", {"alert": "ApiNoHealthyBackend"})],
    )
    print(f"\n{fires.summary}\n{never.summary}\n{silent.summary}")
    assert fires.passed, fires.summary
    assert fires.measured["receiver"] == receiver == "warning"
    assert fires.measured["fired_after_s"] is not None
    assert fires.measured["notified_after_s"] >= fires.measured["starts_at_after_s"] - 1.0
    assert not never.passed
    assert "DatabasePrimaryMissing did not fire within 5.0s" in never.summary
    assert silent.passed, silent.summary
    assert fault.verify_reverted(state) == []
    got = notifications(cfg, since=time.time() - 120, alert="DependencyDown")
    assert any(n["receiver"] == "warning" and n["status"] == "firing" for n in got)
    # The resolved notification follows once the dependency is back.
    deadline = time.time() + 30
    while time.time() < deadline:
        if any(n["status"] == "resolved" for n in notifications(cfg, since=time.time() - 120, alert="DependencyDown")):
            break
        time.sleep(0.5)
    else:
        pytest.fail("no resolved notification for DependencyDown")


# -- etcd across a zone loss -------------------------------------------------------------
def _etcd_status(cfg: LabConfig, zone: str) -> dict:
    url = f"http://{cfg.zone_ip(zone)}:{cfg.port('etcd-client')}/v3/maintenance/status"
    req = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=2) as r:
        return json.loads(r.read())


def test_a_zone_coming_back_does_not_depose_the_etcd_leader(full_lab):
    """A member cut off for a while must rejoin quietly (etcd pre-vote). Without it,
    its raised term deposes the leader on return, the cluster stays leaderless for
    seconds, and Patroni demotes a healthy primary: the database fails over after the
    zone came *back* (seen as an aborted zone-loss experiment)."""
    from harness.lab import network

    cfg = full_lab.cfg
    before = {z: _etcd_status(cfg, z) for z in cfg.zones}
    leader = next(iter(before.values()))["leader"]
    leader_zone = next(z for z, st in before.items() if st["header"]["member_id"] == leader)
    primary_zone = db.zone_of(db.primary(cfg))
    zone = next(z for z in cfg.zones if z not in (leader_zone, primary_zone))
    term = int(before[leader_zone]["raftTerm"])
    primary = db.primary(cfg)
    network.cut_zone(cfg, zone, "blackhole")
    try:
        time.sleep(8)  # ~8 election timeouts for the lonely member
    finally:
        network.restore_zone(cfg, zone)
    time.sleep(5)
    after = _etcd_status(cfg, leader_zone)
    assert (after["leader"], int(after["raftTerm"])) == (leader, term), (
        f"the etcd leader changed after zone {zone} came back: term {term} -> {after['raftTerm']}")
    assert _etcd_status(cfg, zone)["leader"] == leader  # the member is back in the cluster
    assert db.primary(cfg) == primary


# -- database failover ------------------------------------------------------------------
def test_crash_of_the_primary_fails_over_and_loses_nothing_in_sync_mode(full_lab, target):
    cfg = full_lab.cfg
    old = db.primary(cfg)
    assert db.synchronous(cfg) is True
    with WriteLoad(cfg) as load:
        fault, state, (writes, quorum) = run_fault_with_checks(
            target, "db-failover", {"mode": "crash"},
            [("writes-resume", {"within": "60s"}), ("db-quorum", {"within": "60s"})],
        )
    print(f"\ncrash of {old} under load ({load.ok} writes ok, {load.failed} failed):\n  {writes.summary}\n  "
          f"{quorum.summary}\n  measured: {writes.measured}")
    assert state["member"] == old
    assert writes.passed, writes.summary
    m = writes.measured
    assert m["write_outage_s"] is not None and m["write_outage_s"] > 0  # a real outage was seen
    assert m["db_write_outage_s"] is not None and m["probe_failures"] > 0
    assert m["lost_acked_writes"] == 0 and m["lost_probe_writes"] == 0
    assert m["acked_writes"] > 0
    assert quorum.passed, quorum.summary
    assert quorum.measured["max_primaries_at_once"] == 1
    assert quorum.measured["final_primary"] != old
    # The old primary rejoined as a replica.
    assert fault.verify_reverted(state) == []
    members = {m["name"]: m for m in db.cluster_state(cfg)["members"]}
    assert members[old]["role"] != "leader"


def test_switchover_moves_the_primary_with_a_short_outage(full_lab, target):
    cfg = full_lab.cfg
    old = db.primary(cfg)
    with WriteLoad(cfg, threads=2):
        fault, state, (writes, quorum) = run_fault_with_checks(
            target, "db-failover", {"mode": "switchover"},
            [("writes-resume", {"within": "30s"}), ("db-quorum", {})],
        )
    print(f"\nswitchover from {old}: {writes.summary}; {quorum.summary}")
    assert writes.passed and quorum.passed
    assert quorum.measured["final_primary"] != old
    assert writes.measured["lost_acked_writes"] == 0
    assert fault.verify_reverted(state) == []


def test_crash_in_async_mode_reports_lost_writes(full_lab, target):
    """Asynchronous replication loses what the replicas had not received: replication
    traffic is dropped from 2 s before the crash (as on a congested link) until a
    replica has been promoted, and the lost acknowledged writes are counted and
    reported, not hidden.

    The link stays cut until the promotion on purpose: the kernel keeps a killed
    process's unsent socket data and retransmits it, so a link restored right after
    the crash can still hand the dead primary's last WAL to a replica (measured: 394
    writes acknowledged during the cut, 0 lost, and the harness rightly said 0)."""
    cfg = full_lab.cfg
    db.set_synchronous(cfg, False)
    old = db.primary(cfg)
    ns = cfg.netns(db.zone_of(old))
    rules = [["OUTPUT", "-p", "tcp", "--sport", str(cfg.port("postgres")), "-d", cfg.zone_ip(z), "-j", "DROP"]
             for z in cfg.zones if db.member_name(z) != old]

    def uncut():
        for r in rules:
            subprocess.run(["ip", "netns", "exec", ns, "iptables", "-D", *r], capture_output=True)

    def uncut_once_promoted():
        def wait():
            deadline = time.time() + 90
            while time.time() < deadline and db.primary(cfg) in (None, old):
                time.sleep(0.2)
            uncut()

        threading.Thread(target=wait, daemon=True).start()

    try:
        with WriteLoad(cfg):
            for r in rules:
                subprocess.run(["ip", "netns", "exec", ns, "iptables", "-I", *r], check=True)
            cut_at = time.time()
            time.sleep(2.0)
            _, state, (writes, _quorum) = run_fault_with_checks(
                target, "db-failover", {"mode": "crash"},
                [("writes-resume", {"within": "60s", "max-lost-writes": 1000000}), ("db-quorum", {})],
                after_inject=uncut_once_promoted,
            )
    finally:
        uncut()
        db.set_synchronous(cfg, True)
    from harness.targets.lab.checks.db import read_acks

    acked_while_cut = [i for i, t in read_acks(cfg.root, since=cut_at, until=cut_at + 2.0)]
    print(f"\nasync crash of {old} after 2 s without replication: {writes.summary} "
          f"({len(acked_while_cut)} writes acknowledged while replication was cut)")
    assert writes.measured["replication"] == "asynchronous"
    assert "acknowledged writes lost" in writes.summary
    assert writes.measured["write_outage_s"] is not None
    lost = writes.measured["lost_acked_writes"]
    assert isinstance(lost, int)
    if acked_while_cut:
        assert lost > 0, "writes acknowledged while replication was cut cannot be on the new primary"


# -- lab down --------------------------------------------------------------------------------
def test_lab_down_leaves_nothing_behind(lab):
    cfg = full_cfg(lab.cfg)
    RUN_DIR = cfg.run_dir
    own = Lab(cfg)
    own.down()
    shutil.rmtree(Path(RUN_DIR).parent, ignore_errors=True)
    own.up()
    full_lab = own
    # A toxic left on purpose: lab down must not leave it (Toxiproxy is stopped with it).
    Client(cfg).add_toxic("db", name="left-behind", type="latency", attributes={"latency": 10})
    left = full_lab.down()
    assert left == []
    stray = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if RUN_DIR in cmd or f"--listen {cfg.subnet}." in cmd:
            stray.append((p.info["pid"], cmd[:120]))
    assert stray == []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"{cfg.prefix}-zone-" not in netns
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f" {cfg.prefix}-" not in links
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    assert cfg.subnet not in rules and cfg.prefix.upper() + "-" not in rules
    qdiscs = subprocess.run(["tc", "qdisc", "show"], capture_output=True, text=True).stdout
    assert f"{cfg.prefix}-" not in qdiscs
    for port in (cfg.port("toxiproxy"), cfg.port("toxi-db"), cfg.port("prometheus")):
        assert not any(c.laddr and c.laddr.port == port for c in psutil.net_connections("tcp")
                       if c.status == psutil.CONN_LISTEN)
    # Up again from the data it kept: no toxic comes back; then down for good.
    try:
        full_lab.up()
        assert full_lab.healthy()
        assert Client(cfg).all_toxics() == {"db": [], "dependency": []}
    finally:
        assert full_lab.down() == []
        shutil.rmtree(Path(RUN_DIR).parent, ignore_errors=True)

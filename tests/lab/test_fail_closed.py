"""Fail closed: when the harness loses its eyes while a fault is active, it aborts and
reverts; when a check cannot read its evidence, the check fails.

Each test breaks one of the harness's own sources for real (SIGKILL or SIGSTOP of the
Locust child, SIGSTOP of the lab's Prometheus or Alertmanager) in the middle of a real
fault, and checks the verdict, the exit code, the reason and that the fault is gone.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.engine.run import Run
from harness.experiment.loader import load_experiment
from harness.lab import alerting, network, procs

ROOT = Path(__file__).resolve().parents[2]

ZONE_CUT = """\
title: a database replica's zone cut while the harness loses a source
load: {{locustfile: {root}/load/api.py, users: 10, spawn-rate: 10, warmup: 5s}}
# the steady state only gates the test (what is under test is the guard): a lenient bar
# so that the previous test's recovery never makes this one "not steady"
steady-state: {{window: 5s, slo: {{availability: ">= 80%"}}}}
under-fault: {{slo: {{}}}}
method:
  - {{fault: zone-loss, zone: db-replica, mode: refuse, duration: 40s}}
abort-when:
{aborts}
recovery: {{within: 30s}}
"""


def zone_cut(aborts: str) -> str:
    """The zone-cut experiment, on the zone of an asynchronous database replica (the
    harness's own ``db-replica`` role): what is under test is the guard, and a cut of the
    primary's or the synchronous standby's zone (where earlier tests' failovers left them)
    stalls writes, which a latency or error abort rightly takes for the system's failure
    before the source is taken away (a CI run's latency_p95 abort, 2.6 s after a cut of the
    primary's zone b, before the load generator was frozen)."""
    return ZONE_CUT.format(root=ROOT, aborts=aborts)


def _run(tmp_path, target, text: str) -> Run:
    path = tmp_path / f"exp-{time.monotonic_ns()}.yaml"
    path.write_text(text)
    return Run(load_experiment(path), target, report_dir=tmp_path / "reports", lock_wait=300)


def _after_inject(run: Run, delay: float, action) -> threading.Thread:
    """Call ``action(run)`` ``delay`` seconds after the run's first injection."""

    def work():
        deadline = time.time() + 120
        while run.first_inject is None and time.time() < deadline:
            time.sleep(0.05)
        if run.first_inject is None:
            return
        time.sleep(delay)
        run.broken_at = time.time()
        action(run)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    return t


@contextmanager
def frozen(pid: int):
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _assert_aborted_blind(run, result, source: str, bound: float, lab):
    assert result.verdict.status == "aborted", result.verdict
    assert result.verdict.exit_code == 4
    reason = result.verdict.reasons[0]
    assert reason.startswith(f"guard blind: {source}"), reason
    assert result.abort and result.abort["message"].startswith("guard blind")
    # acted within the bound plus a second of the source going away
    assert result.abort["at"] - run.broken_at <= bound + 1.0, (result.abort["at"] - run.broken_at, reason)
    assert network.zone_status(lab.cfg, result.faults[0]["state"]["zone"]) == "up"
    assert Path(result.journal_path).exists() and result.report_path and Path(result.report_path).exists()
    # the fault was reverted when the guard went blind, long before its 40 s
    fault = result.faults[0]
    assert fault["reverted_at"] - fault["injected_at"] < 20


def test_load_generator_killed_mid_fault_aborts_and_restores_the_zone(lab, target, tmp_path):
    run = _run(tmp_path, target, zone_cut('  - {error_ratio: "> 50%", for: 2s}\n'
                                            '  - {elapsed: "> 5m"}'))
    _after_inject(run, 3.0, lambda r: os.kill(r.load.proc.pid, signal.SIGKILL))
    result = run.execute()
    _assert_aborted_blind(run, result, "load generator", run.exp.guard.load, lab)
    assert "exited" in result.verdict.reasons[0] and "SIGKILL" in result.verdict.reasons[0]


def test_load_generator_frozen_mid_fault_aborts_and_its_stall_is_not_judged(lab, target, tmp_path):
    run = _run(tmp_path, target, zone_cut('  - {latency_p95: "> 2s"}\n'
                                            '  - {elapsed: "> 5m"}'))
    holder = {}

    def freeze(r):
        pid = r.load.proc.pid
        holder["pid"] = pid
        os.kill(pid, signal.SIGSTOP)

    _after_inject(run, 3.0, freeze)
    try:
        result = run.execute()
    finally:
        if "pid" in holder:
            try:
                os.kill(holder["pid"], signal.SIGCONT)
            except ProcessLookupError:
                pass
    _assert_aborted_blind(run, result, "load generator", run.exp.guard.load, lab)
    assert "no record for" in result.verdict.reasons[0]
    # the freeze is the generator's, not the system's: no latency abort, no SLO blamed on it
    assert "latency_p95" not in result.verdict.reasons[0]


def test_prometheus_frozen_with_a_prometheus_stop_condition_aborts(lab, target, tmp_path):
    pid = procs.read_pid(lab.cfg, "prometheus")
    assert pid
    text = zone_cut('  - {availability: "< 50%", source: prometheus, window: 30s}\n'
                         '  - {elapsed: "> 5m"}')
    run = _run(tmp_path, target, text)
    stopped = threading.Event()

    def freeze(r):
        os.kill(pid, signal.SIGSTOP)
        stopped.set()

    _after_inject(run, 3.0, freeze)
    try:
        result = run.execute()
    finally:
        if stopped.is_set():
            os.kill(pid, signal.SIGCONT)
    _assert_aborted_blind(run, result, "prometheus", run.exp.guard.prometheus, lab)


def test_alert_silent_cannot_pass_while_alertmanager_is_down(lab, target, tmp_path):
    pid = procs.read_pid(lab.cfg, "alertmanager")
    assert pid
    text = f"""\
title: a benign fault, alert-silent while Alertmanager is frozen
load: {{locustfile: {ROOT}/load/api.py, users: 5, spawn-rate: 5, warmup: 5s}}
steady-state: {{window: 5s, slo: {{availability: ">= 80%"}}}}
method:
  - {{fault: network-latency, link: dependency, latency: 10ms, duration: 10s}}
abort-when:
  - {{elapsed: "> 3m"}}
recovery: {{within: 30s}}
expect:
  - alert-silent: {{alert: DependencyDown}}
"""
    # An alert no earlier test's zone cut can set off (the error-rate alerts did: the errors of
    # a previous cut's recovery made ApiErrorRateCritical fire during this run, for real), and
    # one this benign fault cannot fire: whatever the check says, it must not say "silent".
    deadline = time.time() + 240
    while alerting.active_alerts(lab.cfg, "DependencyDown") and time.time() < deadline:
        time.sleep(2)
    assert not alerting.active_alerts(lab.cfg, "DependencyDown"), "the alert never resolved"
    run = _run(tmp_path, target, text)
    done = threading.Event()

    def freeze(r):
        with frozen(pid):
            time.sleep(6.0)
        done.set()

    _after_inject(run, 1.0, freeze)
    result = run.execute()
    assert done.wait(30)
    assert result.verdict.status == "failed", result.verdict
    check = next(c for c in result.checks if c.kind == "alert-silent")
    assert not check.passed and not check.verified
    assert check.summary.startswith("could not verify"), check.summary
    assert any("alertmanager" in e for e in check.evidence)


# -- a fault that would act on nothing is an error, not a quiet pass --------------------------
@contextmanager
def pid_file_naming_another_start(cfg, name: str):
    """The lab's pid file for ``name`` names its pid with another start time, as for a
    recycled pid (and as every pid file read before start ticks, after a clock step)."""
    f = cfg.path("pids", f"{name}.pid")
    text = f.read_text()
    pid, created, ticks = text.split()
    f.write_text(f"{pid} {created} {int(ticks) + 1}\n")
    try:
        yield int(pid), int(ticks)
    finally:
        f.write_text(text)


def test_a_dependency_stop_that_does_not_take_fails_the_injection(lab, target):
    from harness.errors import FaultError
    from harness.lab.dependency import Dependency

    fault = target.fault("dependency-down", {})
    state = fault.prepare()
    with pid_file_naming_another_start(lab.cfg, "dependency") as (pid, ticks):
        with pytest.raises(FaultError, match="still answers after it was stopped"):
            fault.inject(state)
        assert procs.same_process(pid, ticks), "the process the pid file did not name was killed"
    assert Dependency(lab.cfg).ok()
    assert procs.read_pid(lab.cfg, "dependency") == pid


def test_a_member_crash_without_patronis_process_is_refused_and_kills_nothing(lab, target):
    from harness.errors import FaultError
    from harness.lab import db

    primary = db.primary(lab.cfg)
    zone = db.zone_of(primary)
    postmasters = db.postmaster_pids(lab.cfg, zone)
    assert postmasters
    fault = target.fault("db-failover", {"mode": "crash"})
    state = fault.prepare()
    assert state["member"] == primary
    with pid_file_naming_another_start(lab.cfg, db.proc_name(zone)) as (pid, ticks):
        with pytest.raises(FaultError, match=f"Patroni process of {primary} was not found"):
            fault.inject(state)
        assert procs.same_process(pid, ticks)
    assert db.postmaster_pids(lab.cfg, zone)[0] == postmasters[0], "PostgreSQL was killed alone"
    assert db.primary(lab.cfg) == primary


def test_the_whole_harness_paused_mid_fault_is_journalled_and_the_run_goes_on(lab, tmp_path):
    """The counterpart of the frozen load generator: what a paused VM does to the harness
    (every process of it stops at once, then all go on). That is no source lost: the guard
    journals the gap, restarts its bounds, and the run ends as the system deserves. Here
    the harness's processes are stopped for 5 s (the lab's keep running: the stricter
    case, since the fault goes on meanwhile); the CI run that asked for this was a real
    VM snapshot."""
    import json
    import re
    import subprocess
    import sys

    import psutil

    exp = tmp_path / "paused.yaml"
    exp.write_text(zone_cut('  - {error_ratio: "> 50%", for: 2s}\n  - {elapsed: "> 5m"}')
                   .replace("duration: 40s", "duration: 15s"))
    env = dict(os.environ, HARNESS_LAB_DIR=lab.cfg.run_dir)
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(exp), "--report-dir", str(tmp_path),
                             "--wait", "300"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=ROOT)
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None:
        if any(network.zone_status(lab.cfg, z).startswith("cut") for z in lab.cfg.zones):
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.stdout.read()
    time.sleep(3.0)
    harness = psutil.Process(proc.pid)
    family = [harness] + harness.children(recursive=True)
    for p in family:
        p.suspend()
    time.sleep(5.0)
    for p in reversed(family):
        p.resume()
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out
    assert all(network.zone_status(lab.cfg, z) == "up" for z in lab.cfg.zones)
    journal = json.loads(Path(re.search(r"journal: (\S+)", out).group(1)).read_text())
    notes = [e["text"] for e in journal["harness"]["events"] if e["kind"] == "guard"]
    assert any(re.search(r"did not run for [4-9]\.\ds", n) for n in notes), notes

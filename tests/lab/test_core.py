"""Issue 3's acceptance on the real lab: the harness sees a broken system, aborts,
reverts on Ctrl-C and after SIGKILL, and runs plain Chaos Toolkit experiments."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.engine.journal import pending
from harness.errors import EnvironmentNotReady
from harness.lab import network

from .conftest import CASES, ROOT, policy, wait_replicas_ready


def test_pod_kill_passes_on_the_healthy_lab(run_experiment):
    result = run_experiment((CASES / "pod-kill-fast.yaml").read_text())
    assert result.verdict.status == "passed", result.verdict.reasons
    phases = {r.phase for r in result.slo_results}
    assert phases == {"steady-state", "under-fault", "recovery"}
    check = next(c for c in result.checks if c.kind == "recovers")  # no-lasting-damage is on too
    assert check.passed and check.measured["recovery_seconds"] is not None
    assert result.faults[0]["reverted_at"] is not None
    assert Path(result.journal_path).exists()


def test_single_replica_fails_and_says_availability_dropped(lab, run_experiment):
    with policy(lab, min_replicas=1, max_replicas=1, autoscale=False):
        wait_replicas_ready(lab, 1)
        result = run_experiment((CASES / "pod-kill-fast.yaml").read_text())
    wait_replicas_ready(lab, lab.cfg.replicas)
    assert result.verdict.status == "failed"
    text = "\n".join(result.verdict.reasons)
    assert "under-fault: availability >= 99% (users) BROKEN: observed" in text, text
    broken = [r for r in result.slo_results if r.phase == "under-fault" and r.sli == "availability"][0]
    assert broken.observed < 0.99 and broken.worst_at is not None


ABORT = """\
title: every replica dies, the abort condition must stop it
load: {locustfile: "@ROOT@/load/api.py", users: 20, spawn-rate: 20, warmup: 3s}
steady-state: {window: 3s, slo: {availability: ">= 99%"}}
method:
  - {fault: zone-loss, zone: a, mode: refuse, duration: 60s, concurrent: true}
  - {fault: pod-kill, selector: {app: api}, percent: 100, duration: 60s}
abort-when:
  - {error_ratio: "> 10%", reason: users are failing}
  - {elapsed: "> 2m"}
"""


def test_abort_condition_trips_and_reverts_at_once(lab, run_experiment):
    result = run_experiment(ABORT)
    assert result.verdict.status == "aborted"
    assert result.abort["condition"] == "error_ratio > 10%"
    assert result.abort["observed"] > 0.10
    assert "error_ratio > 10%" in result.verdict.reasons[0] and "users are failing" in result.verdict.reasons[0]
    assert result.verdict.exit_code == 4
    # every fault reverted, the zone cut included, well before the 60 s hold ended
    assert all(f["reverted_at"] for f in result.faults)
    assert network.zone_status(lab.cfg, "a") == "up"
    assert result.ended_at - result.started_at < 50
    assert not pending()


SLOW_ZONE_CUT = """\
title: a long zone cut, to be interrupted
load: {locustfile: "@ROOT@/load/api.py", users: 5, spawn-rate: 5, warmup: 1s}
method:
  - {fault: zone-loss, zone: b, mode: blackhole, duration: 120s}
abort-when: [{elapsed: "> 5m"}]
"""


def _start_run(tmp_path, lab) -> subprocess.Popen:
    exp = tmp_path / "slow.yaml"
    exp.write_text(SLOW_ZONE_CUT.replace("@ROOT@", str(ROOT)))
    env = dict(os.environ, HARNESS_LAB_DIR=lab.cfg.run_dir)
    return subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(exp), "--report-dir", str(tmp_path), "--wait", "300"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)


def _wait_for_cut(lab, proc, zone="b", timeout=60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if network.zone_status(lab.cfg, zone).startswith("cut"):
            return
        time.sleep(0.1)
    out = proc.stdout.read() if proc.poll() is not None else ""
    raise AssertionError(f"the zone was never cut:\n{out}")


def _communicate_or_dump(proc: subprocess.Popen, timeout: float, what: str) -> str:
    """The run's output; if it does not end in time, its thread stacks (the CLI dumps
    them on SIGQUIT) go into the failure, and the process is killed."""
    try:
        out, _ = proc.communicate(timeout=timeout)
        return out
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGQUIT)
        time.sleep(2)
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"the run did not end within {timeout:g}s of {what}; its output and threads:\n"
                             f"{out[-12000:]}") from None


def test_ctrl_c_reverts_the_fault_and_exits_non_zero(lab, tmp_path):
    proc = _start_run(tmp_path, lab)
    _wait_for_cut(lab, proc)
    proc.send_signal(signal.SIGINT)
    out = _communicate_or_dump(proc, 60, "Ctrl-C")
    assert proc.returncode == 130, out
    assert network.zone_status(lab.cfg, "b") == "up"
    assert "INTERRUPTED" in out and "reverted" in out
    assert not pending()


def test_sigkill_then_cleanup_leaves_nothing(lab, tmp_path):
    proc = _start_run(tmp_path, lab)
    _wait_for_cut(lab, proc)
    proc.kill()
    proc.wait(10)
    assert network.zone_status(lab.cfg, "b").startswith("cut")  # the crash left it cut...
    left = pending()
    assert [e.kind for e in left] == ["zone-loss"]
    out = subprocess.run([sys.executable, "-m", "harness.cli", "cleanup"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "reverted" in out.stdout
    assert network.zone_status(lab.cfg, "b") == "up"  # ...and cleanup restored it
    assert not pending()
    again = subprocess.run([sys.executable, "-m", "harness.cli", "cleanup"], capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 0 and "nothing to clean up" in again.stdout


def _frozen_replica(target):
    r = next(r for r in target.replicas() if r["ready"])
    os.kill(r["pid"], signal.SIGSTOP)  # alive, but its /healthz never answers: not ready
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if not next(x for x in target.replicas() if x["name"] == r["name"])["ready"]:
            return r
        time.sleep(0.2)
    os.kill(r["pid"], signal.SIGCONT)
    raise AssertionError(f"{r['name']} still read ready 15 s after it was frozen")


def test_preflight_refuses_a_lab_that_stays_unhealthy(lab, target):
    r = _frozen_replica(target)
    try:
        with pytest.raises(EnvironmentNotReady, match=rf"not healthy \(still, after 15s\)(.|\n)*{r['name']} "):
            target.preflight()
    finally:
        os.kill(r["pid"], signal.SIGCONT)
    assert not pending()  # refused before anything was injected


def test_preflight_waits_out_a_replica_that_recovers_by_itself(lab, target):
    # the blip seen in CI: a replica not ready for a moment right after an earlier fault
    r = _frozen_replica(target)
    timer = threading.Timer(3.0, os.kill, (r["pid"], signal.SIGCONT))
    timer.start()
    try:
        target.preflight()  # does not raise: the lab healed within the settle time
    finally:
        timer.join()
    assert next(x for x in target.replicas() if x["name"] == r["name"])["ready"]


def _plain(tmp_path, probe_cmd: str) -> str:
    marker = tmp_path / "rolled-back"
    return f"""\
title: plain Chaos Toolkit experiment
description: process and python providers, no harness keys
steady-state-hypothesis:
  title: the marker says ok
  probes:
    - type: probe
      name: status-file-ok
      tolerance: 0
      provider: {{type: process, path: sh, arguments: "-c '{probe_cmd}'"}}
method:
  - type: action
    name: python-action
    provider: {{type: python, module: os.path, func: exists, arguments: {{path: /}}}}
  - type: action
    name: flip
    provider: {{type: process, path: sh, arguments: "-c 'touch {tmp_path}/flipped'"}}
rollbacks:
  - type: action
    name: write-marker
    provider: {{type: process, path: sh, arguments: "-c 'touch {marker}'"}}
"""


def test_plain_chaostoolkit_experiment_that_holds_passes_and_rolls_back(run_experiment, tmp_path):
    result = run_experiment(_plain(tmp_path, "true"))
    assert result.verdict.status == "passed", result.verdict.reasons
    assert (tmp_path / "flipped").exists() and (tmp_path / "rolled-back").exists()


def test_plain_chaostoolkit_experiment_that_deviates_fails_and_rolls_back(run_experiment, tmp_path):
    # holds before the method, deviates after it (the method creates 'flipped')
    result = run_experiment(_plain(tmp_path, f"test ! -e {tmp_path}/flipped"))
    assert result.verdict.status == "failed"
    assert "deviated" in " ".join(result.verdict.reasons)
    assert (tmp_path / "rolled-back").exists()


FAILING_SECOND_FAULT = """\
title: the second fault cannot be injected; the first must still be reverted
load: {locustfile: "@ROOT@/load/api.py", users: 5, spawn-rate: 5, warmup: 1s}
method:
  - {fault: zone-loss, zone: c, mode: refuse, duration: 30s, concurrent: true}
  - {fault: pod-kill, selector: {app: no-such-app}, count: 1, duration: 30s}
abort-when: [{elapsed: "> 2m"}]
"""


def test_a_fault_that_cannot_act_ends_the_run_and_reverts_the_others(lab, run_experiment):
    result = run_experiment(FAILING_SECOND_FAULT)
    assert result.verdict.status == "error" and result.verdict.exit_code == 5
    assert "could not inject pod-kill" in result.verdict.reasons[0]
    assert "no running replica matches" in result.verdict.reasons[0]
    assert network.zone_status(lab.cfg, "c") == "up"
    assert all(f["reverted_at"] for f in result.faults) and len(result.faults) == 1
    assert not pending()


SERVER_SIDE = """\
title: server-side SLOs and a Prometheus abort condition
load: {locustfile: "@ROOT@/load/api.py", users: 20, spawn-rate: 20, warmup: 3s}
steady-state:
  window: 10s
  server-slo: {availability: ">= 99%", latency_p99: "< 1s"}
  prometheus:
    # over the steady-state window ($window), so errors from an earlier test are not counted
    - name: LB error ratio
      query: 'sum(rate(haproxy_frontend_http_responses_total{proxy="api",code="5xx"}[$window])) / sum(rate(haproxy_frontend_http_responses_total{proxy="api"}[$window]))'
      objective: "< 1%"
method:
  - {fault: pod-kill, selector: {app: api}, count: 1, duration: 30s}
abort-when:
  - {prometheus: "sum(lab_replicas_ready)", is: "< 3", reason: a replica is gone}
  - {elapsed: "> 2m"}
"""


def test_server_side_slos_and_prometheus_abort(lab, run_experiment):
    result = run_experiment(SERVER_SIDE)
    steady = {r.label: r for r in result.slo_results if r.phase == "steady-state"}
    assert set(steady) == {"availability >= 99% (server)", "latency_p99 < 1s (server)", "LB error ratio < 1% (server)"}
    assert all(r.passed and r.observed is not None for r in steady.values()), steady
    assert result.verdict.status == "aborted"
    assert result.abort["condition"].startswith("sum(lab_replicas_ready) < 3")
    assert result.abort["observed"] < 3
    # Prometheus sees the missing replica within a few scrapes, long before the 30 s hold ends
    assert result.abort["at"] - result.faults[0]["injected_at"] < 20


def test_a_system_that_does_not_recover_fails_the_recovery_verdict(lab, run_experiment):
    """The fault is reverted, but the system stays broken (a CTK action in the method
    scales the api to zero, as a bad rollout would): recovery must be reported as failed."""
    import json

    from .conftest import orchestrator

    before = orchestrator(lab, "/state")["policy"]
    url = f"http://127.0.0.1:{lab.cfg.port('orchestrator')}/policy"
    args = json.dumps(["-s", "-XPOST", "-d", '{"min_replicas": 0, "max_replicas": 0, "autoscale": false}', url])
    text = f"""\
title: nothing comes back after the fault
load: {{locustfile: "@ROOT@/load/api.py", users: 10, spawn-rate: 10, warmup: 2s}}
steady-state: {{window: 4s, slo: {{availability: ">= 99%"}}}}
under-fault: {{slo: {{}}}}
method:
  - {{fault: pod-kill, selector: {{app: api}}, count: 1, duration: 3s, concurrent: true}}
  - {{type: action, name: a bad rollout scales the api to zero, provider: {{type: process, path: curl, arguments: {args}}}}}
  - {{pause: 3s}}
abort-when: [{{elapsed: "> 2m"}}]
recovery: {{within: 8s, window: 3s}}
expect: [{{recovers: {{within: 8s}}}}]
"""
    try:
        result = run_experiment(text)
    finally:
        orchestrator(lab, "/policy", before)
        orchestrator(lab, f"/scale?replicas={before['min_replicas']}", {})
    assert result.verdict.status == "failed", result.verdict.reasons
    assert any("steady state not back within 8s" in r for r in result.verdict.reasons), result.verdict.reasons
    assert result.recovery["passed"] is False
    # The replicas check is not fooled by "desired 0": it was 3 before the fault.
    check = next(c for c in result.checks if c.kind == "recovers")  # no-lasting-damage is on too
    assert not check.passed and "0/3 replicas ready" in check.summary, check.summary

"""Load from other machines: `harness load-worker` processes in network namespaces of
their own (as separate load machines would be), joining a run's Locust master over the
network, and one of them lost in the middle of a fault.

Each worker namespace hangs off the lab's bridge with an address of its own; the master
binds on the bridge address and the workers reach the system under test through the
lab's load balancer on that address, never through loopback (which a namespace does not
share)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.engine.run import Run
from harness.errors import EnvironmentNotReady
from harness.experiment.loader import load_experiment
from harness.lab import network, sh

ROOT = Path(__file__).resolve().parents[2]
HARNESS = str(Path(sys.executable).with_name("harness"))


@contextmanager
def load_machines(cfg, count: int, master: str, locustfile: Path):
    """``count`` namespaces on the lab's bridge, each running `harness load-worker`."""
    made, procs = [], []
    try:
        for i in range(1, count + 1):
            ns, host_end = f"{cfg.prefix}-load{i}", f"{cfg.prefix}w{i}h"
            sh.run("ip", "netns", "add", ns)
            made.append((ns, host_end))
            sh.run("ip", "link", "add", host_end, "type", "veth", "peer", "name", f"{cfg.prefix}w{i}n")
            sh.run("ip", "link", "set", f"{cfg.prefix}w{i}n", "netns", ns)
            sh.run("ip", "link", "set", host_end, "master", cfg.bridge)
            sh.run("ip", "link", "set", host_end, "up")
            sh.run("ip", "addr", "add", f"{cfg.subnet}.{200 + i}/24", "dev", f"{cfg.prefix}w{i}n", netns=ns)
            sh.run("ip", "link", "set", f"{cfg.prefix}w{i}n", "up", netns=ns)
            sh.run("ip", "link", "set", "lo", "up", netns=ns)
            procs.append(subprocess.Popen(
                ["ip", "netns", "exec", ns, HARNESS, "load-worker", "--master", master,
                 "--locustfile", str(locustfile), "--host", f"http://{cfg.host_ip}:{cfg.port('lb')}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        for ns, host_end in made:
            sh.run("ip", "netns", "del", ns, check=False)
            sh.run("ip", "link", "del", host_end, check=False)


def _experiment(tmp_path, cfg, method: str, aborts: str, master: str) -> Run:
    text = f"""\
title: load from two other machines
load: {{locustfile: {ROOT}/load/api.py, users: 10, spawn-rate: 10, warmup: 5s,
        expect-workers: 2, master-bind: "{master}", host: "http://{cfg.host_ip}:{cfg.port('lb')}"}}
steady-state: {{window: 5s, slo: {{availability: ">= 80%"}}}}
method:
  - {method}
abort-when:
{aborts}
recovery: {{within: 30s}}
"""
    path = tmp_path / f"exp-{time.monotonic_ns()}.yaml"
    path.write_text(text)
    return Run(load_experiment(path), _target(cfg), report_dir=tmp_path / "reports", lock_wait=300)


def _target(cfg):
    from harness.targets.lab import LabTarget

    return LabTarget.open(cfg.run_dir)


def _master(cfg) -> str:
    return f"{cfg.host_ip}:{cfg.port('load-master')}"


def test_workers_in_other_namespaces_carry_the_load_of_a_run(lab, tmp_path):
    master = _master(lab.cfg)
    run = _experiment(tmp_path, lab.cfg, "{fault: network-latency, link: dependency, latency: 10ms, duration: 8s}",
                      '  - {error_ratio: "> 50%", for: 2s}\n  - {elapsed: "> 3m"}', master)
    with load_machines(lab.cfg, 2, master, ROOT / "load" / "api.py"):
        result = run.execute()
        # both load machines reported to the master, and each was heard from recently
        assert run.load.workers_ready == 2
        assert len(run.load.worker_ages) == 2
    assert result.verdict.status == "passed", result.verdict.reasons
    seen = run.load.series.window(0, time.time() + 1)
    assert seen.requests > 100, seen.requests


def test_a_load_machine_lost_mid_fault_makes_the_guard_blind_and_reverts(lab, tmp_path):
    from harness.lab import db

    master = _master(lab.cfg)
    # a zone without the database primary: earlier tests' failovers move it, and cutting
    # the primary's zone fails most requests (the error-ratio condition would trip first)
    primary = db.primary(lab.cfg, timeout=3)
    zone = next(z for z in reversed(lab.cfg.zones) if db.member_name(z) != primary)
    run = _experiment(tmp_path, lab.cfg, f"{{fault: zone-loss, zone: {zone}, mode: refuse, duration: 40s}}",
                      '  - {error_ratio: "> 50%", for: 2s}\n  - {elapsed: "> 3m"}', master)
    with load_machines(lab.cfg, 2, master, ROOT / "load" / "api.py"):
        def kill_one():
            deadline = time.time() + 120
            while run.first_inject is None and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(3.0)
            run.broken_at = time.time()
            # the whole load machine goes: SIGKILL of everything in its namespace
            for pid in sh.run("ip", "netns", "pids", f"{lab.cfg.prefix}-load1").stdout.split():
                os.kill(int(pid), signal.SIGKILL)

        import threading

        t = threading.Thread(target=kill_one, daemon=True)
        t.start()
        result = run.execute()
        t.join(5)
    assert result.verdict.status == "aborted", result.verdict.reasons
    assert result.verdict.exit_code == 4
    reason = result.verdict.reasons[0]
    assert reason.startswith("guard blind: load generator: worker "), reason
    assert "lost mid-run" in reason
    assert result.abort["at"] - run.broken_at <= run.exp.guard.load + 1.0, (result.abort["at"] - run.broken_at)
    fault = result.faults[0]
    assert fault["reverted_at"] - fault["injected_at"] < 20
    assert network.zone_status(lab.cfg, zone) == "up"


@pytest.fixture(autouse=True)
def _no_stray_namespaces(lab):
    yield
    left = [n for n in sh.run("ip", "netns", "list").stdout.split() if n.startswith(f"{lab.cfg.prefix}-load")]
    assert left == []


def test_a_run_whose_load_workers_do_not_all_join_is_refused(lab, tmp_path, monkeypatch):
    """One of two expected load machines never joins: the run does not start on half its
    users (exit 3, nothing injected). The child's 60 s wait for workers is shortened."""
    master = _master(lab.cfg)
    monkeypatch.setenv("HARNESS_LOAD_WORKERS_WAIT", "5")
    run = _experiment(tmp_path, lab.cfg, "{fault: zone-loss, zone: b, mode: refuse, duration: 10s}",
                      '  - {elapsed: "> 3m"}', master)
    with load_machines(lab.cfg, 1, master, ROOT / "load" / "api.py"):
        with pytest.raises(EnvironmentNotReady) as refused:
            run.execute()
    assert refused.value.exit_code == 3
    assert "only 1 of the 2 load workers joined" in str(refused.value)
    assert run.first_inject is None
    assert network.zone_status(lab.cfg, "b") == "up"

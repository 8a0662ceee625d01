"""Checks measure "after the revert" from the moment the last fault's revert began.

A revert that restarts a process takes seconds (the lab's db-failover revert restarts
Patroni and waits for its PostgreSQL), and the system can come back during it. A
single-member database's writes came back 1.9 s into that revert, before it finished:
measured from the revert's end they looked as if they had resumed "while the fault was
active", and writes-resume passed a failover that never happened."""
from __future__ import annotations

import threading
import time

from harness.engine.run import Run
from harness.experiment.loader import load_experiment
from harness.faults.base import Fault
from harness.targets import registry

from .support import NoTarget

MOMENTS: dict[str, float] = {}


@registry.fault("timed-revert")
class TimedRevert(Fault):
    kind = "zone-loss"

    def inject(self, state):
        MOMENTS["injected"] = time.time()

    def revert(self, state):
        MOMENTS["revert began"] = time.time()
        threading.Event().wait(0.5)
        MOMENTS["revert ended"] = time.time()


class TimedRevertTarget(NoTarget):
    kind = "timed-revert"


def _run(tmp_path, monkeypatch, method: str) -> Run:
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "state"))
    MOMENTS.clear()
    p = tmp_path / "e.yaml"
    p.write_text("title: a slow revert\nmethod:\n" + method + "abort-when: [{elapsed: '> 1m'}]\n")
    run = Run(load_experiment(p), TimedRevertTarget(), report_dir=tmp_path)
    result = run.execute()
    assert result.verdict.status == "passed", result.verdict.reasons
    return run


def test_revert_start_is_recorded_before_the_revert_runs(tmp_path, monkeypatch):
    run = _run(tmp_path, monkeypatch, "  - {fault: zone-loss, zone: a, duration: 0.2s}\n")
    c = run.clock
    assert c.revert_started_at is not None and c.reverted_at is not None
    assert c.revert_started_at <= MOMENTS["revert began"] < MOMENTS["revert ended"] <= c.reverted_at
    assert c.reverted_at - c.revert_started_at >= 0.5


def test_revert_start_is_the_last_faults_not_the_first(tmp_path, monkeypatch):
    # Two faults, the first reverted early: the system is still under fault until the
    # second one's revert begins.
    run = _run(tmp_path, monkeypatch,
               "  - {fault: zone-loss, zone: a, duration: 0.2s, concurrent: true}\n"
               "  - {fault: zone-loss, zone: b, duration: 1.5s}\n")
    c = run.clock
    assert c.revert_started_at is not None
    assert c.revert_started_at - c.injected_at >= 1.4, (c.injected_at, c.revert_started_at)

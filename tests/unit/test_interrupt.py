"""A Ctrl-C is never ignored, even when Python loses its KeyboardInterrupt.

CPython drops the exception a signal handler raises if the signal lands while a
finaliser (``__del__``, a weakref callback) runs on the main thread ("Exception ignored
in ..."). The run must still stop at once: its handler records the interrupt before
raising, and every harness wait watches that record."""
from __future__ import annotations

import json
import os
import signal
import threading

import pytest

from harness.engine.run import Run
from harness.experiment.loader import load_experiment
from harness.faults.base import Fault
from harness.targets import registry

from .support import NoTarget


@pytest.fixture
def long_pause(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "state"))
    p = tmp_path / "e.yaml"
    p.write_text("title: a long pause, interrupted\nmethod:\n"
                 "  - {type: action, name: noop, provider: {type: process, path: 'true'}}\n"
                 "  - {pause: 600s}\n")
    return Run(load_experiment(p), NoTarget(), report_dir=tmp_path)


def _holds(result) -> list[dict]:
    ctk = json.loads(open(result.journal_path).read())
    return [r for r in ctk.get("run", []) if r["activity"]["name"].startswith("hold")]


def _sigint_soon(run: Run) -> threading.Thread:
    def send():
        # once the method's hold is waiting (a harness wait, inside chaoslib's Runner)
        while not run.in_harness_wait:
            threading.Event().wait(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=send, daemon=True)
    t.start()
    return t


def test_ctrl_c_stops_a_run_in_its_hold(long_pause):
    _sigint_soon(long_pause)
    result = long_pause.execute()
    assert result.verdict.status == "interrupted", result.verdict.reasons
    holds = _holds(result)
    assert holds and holds[0].get("output") != "held 600s", holds  # it did not wait the pause out


def test_a_lost_keyboard_interrupt_still_stops_the_run(long_pause, monkeypatch):
    original = Run._on_interrupt_signal

    def swallowed(self, signum, frame):
        try:
            original(self, signum, frame)
        except KeyboardInterrupt:
            pass  # what happens when the signal lands in a finaliser

    monkeypatch.setattr(Run, "_on_interrupt_signal", swallowed)
    _sigint_soon(long_pause)
    result = long_pause.execute()
    assert result.verdict.status == "interrupted", result.verdict.reasons
    holds = _holds(result)
    assert holds and holds[0].get("output") != "held 600s", holds  # it did not wait the pause out
    assert any(e.get("kind") == "interrupted" for e in result.events)


REVERTS: list[str] = []


@registry.fault("slow-revert")
class SlowRevert(Fault):
    """A fault whose revert takes a while: Ctrl-C / `harness stop` lands in the middle."""

    kind = "zone-loss"

    def inject(self, state):
        REVERTS.append("injected")

    def revert(self, state):
        REVERTS.append("revert started")
        threading.Event().wait(1.0)
        REVERTS.append("revert finished")


class SlowRevertTarget(NoTarget):
    kind = "slow-revert"


def test_ctrl_c_during_a_revert_lets_the_revert_finish(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "state"))
    REVERTS.clear()
    p = tmp_path / "e.yaml"
    p.write_text("title: interrupted while reverting\nmethod:\n"
                 "  - {fault: zone-loss, zone: a, duration: 0.5s}\n  - {pause: 600s}\n"
                 "abort-when: [{elapsed: '> 10m'}]\n")
    run = Run(load_experiment(p), SlowRevertTarget(), report_dir=tmp_path)

    def send():
        while "revert started" not in REVERTS:
            threading.Event().wait(0.01)
        os.kill(os.getpid(), signal.SIGINT)  # what `harness stop` sends

    threading.Thread(target=send, daemon=True).start()
    result = run.execute()
    assert REVERTS == ["injected", "revert started", "revert finished"]  # not cut in half, not twice
    assert result.verdict.status == "interrupted", result.verdict.reasons
    assert not run.journal.live
    assert result.faults[0]["reverted_at"] is not None

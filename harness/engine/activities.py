"""The Python activities Chaos Toolkit calls when it runs a harness experiment.

The harness compiles its experiment into a Chaos Toolkit one whose probes and
actions point here; each looks up the live run (one per process: runs never overlap).
"""
from __future__ import annotations

from harness.engine import context


def slo_holds(index: int) -> bool:
    """Steady-state probe: SLO ``index`` holds (before: over the steady-state window;
    after: over the recovery window)."""
    return context.current().probe_slo(index)


def held_under_fault() -> bool:
    """After the method: every SLO held while faults were active (trivially true before)."""
    return context.current().probe_under_fault()


def expectations_met() -> bool:
    """After the method: every expectation (alerts, recovery, scaling...) passed."""
    return context.current().probe_expectations()


def inject_fault(step: int) -> str:
    return context.current().inject_step(step)


def revert_fault(step: int) -> str:
    return context.current().revert_step(step)


def hold(seconds: float) -> str:
    """Wait while faults act; returns early (and stops the method) if the guard trips."""
    return context.current().hold(seconds)


def await_recovery() -> str:
    return context.current().await_recovery()


def revert_all() -> str:
    """Rollback: revert every fault still active (idempotent)."""
    run = context.current_or_none()
    return run.revert_everything("rollback") if run else "no run"

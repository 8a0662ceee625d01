"""The Python activities Chaos Toolkit calls when it runs a harness experiment.

The harness compiles its experiment into a Chaos Toolkit one whose probes and
actions point here; each looks up the live run (one per process: runs never overlap).
"""
from __future__ import annotations

import functools

from harness.engine import context, hypothesis


def _ours(func):
    """Mark the run as inside one of the harness's own activities while ``func`` runs:
    the guard then stops the method through the abort event (which every harness wait
    watches) instead of a signal that could cut an inject or a revert in half."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        run = context.current_or_none()
        if run is None:
            return func(*args, **kwargs)
        outer = run.in_harness_activity
        run.in_harness_activity = True
        try:
            return func(*args, **kwargs)
        finally:
            run.in_harness_activity = outer

    return wrapper


@_ours
def slo_holds(index: int) -> bool:
    """Steady-state probe: SLO ``index`` holds (before: over the steady-state window;
    after: over the recovery window)."""
    return hypothesis.probe_slo(context.current(), index)


@_ours
def held_under_fault() -> bool:
    """After the method: every SLO held while faults were active (trivially true before)."""
    return hypothesis.probe_under_fault(context.current())


@_ours
def expectations_met() -> bool:
    """After the method: every expectation (alerts, recovery, scaling...) passed."""
    return hypothesis.probe_expectations(context.current())


@_ours
def inject_fault(step: int) -> str:
    return context.current().inject_step(step)


@_ours
def revert_fault(step: int) -> str:
    return context.current().revert_step(step)


@_ours
def hold(seconds: float) -> str:
    """Wait while faults act; returns early (and stops the method) if the guard trips."""
    return context.current().hold(seconds)


@_ours
def run_schedule() -> str:
    """A scenario's whole method: steps at offsets and on conditions (harness.scenario.driver)."""
    from harness.scenario.driver import run_schedule as drive

    return drive(context.current())


@_ours
def await_recovery() -> str:
    return hypothesis.await_recovery(context.current())


@_ours
def revert_all() -> str:
    """Rollback: revert every fault still active (idempotent)."""
    run = context.current_or_none()
    return run.revert_everything("rollback") if run else "no run"

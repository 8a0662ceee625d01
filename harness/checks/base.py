"""Expectations checked while an experiment runs: alerts, scaling, recovery...

A check is started (in its own thread) when the first fault is injected and
returns a :class:`CheckResult` that carries the numbers that decided it.
"""
from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from harness.targets.base import Target


@dataclass
class CheckResult:
    kind: str
    passed: bool
    summary: str  # one sentence with the numbers, e.g. "alert ApiDown fired after 6.8s (<= 30s)"
    measured: dict[str, Any] = field(default_factory=dict)
    #: what the verdict rests on: the source read and the phase its evidence came from,
    #: e.g. ["alertmanager /api/v2/alerts: 120 polls, 0 errors", "phase: under fault"]
    evidence: list[str] = field(default_factory=list)
    #: False when the check could not read its evidence: it then fails ("could not verify")
    verified: bool = True


def unverified(kind: str, what: str, measured: dict[str, Any] | None = None,
               evidence: list[str] | None = None) -> CheckResult:
    """A check that could not read its evidence never passes (fail closed)."""
    return CheckResult(kind, False, f"could not verify: {what}", measured or {}, evidence or [], verified=False)


@dataclass
class RunClock:
    """Moments of the run that checks measure from (epoch seconds)."""

    started_at: float
    injected_at: float | None = None
    reverted_at: float | None = None      # the last revert finished
    # The last live fault's revert began: from then on nothing holds the fault in place
    # (a revert that restarts a process takes seconds, and the system may come back
    # during it: "after the revert" is measured from here).
    revert_started_at: float | None = None
    reverted: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def wait_until(self, deadline: float, step: float = 0.25) -> bool:
        """Sleep until ``deadline`` (epoch) or until the run is stopped. False if stopped."""
        while time.time() < deadline:
            if self.stop.wait(min(step, max(0.0, deadline - time.time()))):
                return False
        return True


class Check(ABC):
    kind: ClassVar[str]

    def __init__(self, target: "Target", params: dict[str, Any]):
        self.target = target
        self.params = params

    def problems(self) -> list[str]:
        """Input errors found before anything runs (an alert the plan does not define,
        a receiver the plan cannot resolve): each is file:line for the person."""
        return []

    def precondition(self, timeout: float) -> str | None:
        """Wait (up to ``timeout``) until the check can judge a fresh fault, e.g. an
        alert it expects is not already firing from an earlier event. Returns None when
        ready, or why not (the run is then "not in steady state", nothing injected)."""
        return None

    def before_method(self) -> None:
        """Called on the run's thread just before the first fault is injected (e.g. to
        read gauges to compare with after recovery). Must be quick and never raise."""

    @abstractmethod
    def run(self, clock: RunClock) -> CheckResult:
        """Watch until the expectation is met or its time is up. Runs in a thread."""

    def describe(self) -> str:
        args = " ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.kind} {args}".strip()

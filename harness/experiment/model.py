"""Typed experiment objects. Dicts stop at the loader; everything after uses these."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.load.generator import LoadSpec
from harness.quantities import Objective


@dataclass(frozen=True)
class Where:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Slo:
    """One objective on one SLI, from one source (load generator or Prometheus)."""

    sli: str  # availability, latency_p99, ... or a Prometheus SLO's name
    objective: Objective
    source: str  # "load" | "prometheus"
    query: str | None = None  # PromQL for source=prometheus; $window substituted
    where: Where | None = None
    origin: str = ""  # the plan rule it came from (slo: plan), with its source

    @property
    def label(self) -> str:
        side = "users" if self.source == "load" else "server"
        return f"{self.sli} {self.objective} ({side})"


@dataclass(frozen=True)
class SloSet:
    window: float
    slos: tuple[Slo, ...]


@dataclass(frozen=True)
class Step:
    """One method step: a fault held for a duration, a pause, a CTK activity, or (scenarios)
    the revert of a labelled fault."""

    kind: str  # "fault" | "pause" | "activity"
    fault: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0
    concurrent: bool = False
    activity: dict[str, Any] | None = None
    label: str = ""
    where: Where | None = None
    at: float | None = None  # scenarios: offset from the method's start (harness.scenario.timing)
    when: Any = None  # scenarios: a harness.scenario.timing.When the step waits for

    def describe(self) -> str:
        if self.kind == "revert":
            return f"revert {self.params.get('revert', '')}"
        if self.kind == "fault":
            args = " ".join(f"{k}={v}" for k, v in self.params.items())
            return f"{self.fault} {args}".strip()
        if self.kind == "pause":
            return f"pause {self.duration:g}s"
        return f"{(self.activity or {}).get('type', 'activity')} {(self.activity or {}).get('name', '')}"


@dataclass(frozen=True)
class AbortCondition:
    text: str  # as written, for messages: "error_ratio > 20% for 2s"
    sli: str | None = None  # client SLI name, "elapsed", or None for a PromQL condition
    objective: Objective | None = None  # the BREACH condition (abort when it holds)
    hold: float = 0.0  # "for": breach must last this long
    window: float = 1.0  # SLI window evaluated at each tick
    source: str = "load"
    query: str | None = None
    reason: str = ""
    where: Where | None = None


@dataclass(frozen=True)
class GuardBounds:
    """How long the guard may go without seeing before it aborts (``guard:`` in an
    experiment). Defaults: the load generator streams every 0.1 s, so 3 s of silence is
    30 missed records; Prometheus scrapes every second or so, so 5 s of failed queries
    is several missed evaluations."""

    load: float = 3.0
    prometheus: float = 5.0


@dataclass(frozen=True)
class Expectation:
    kind: str
    params: dict[str, Any]
    where: Where | None = None
    origin: str = ""  # the plan rule it came from (expect: plan), with its source


@dataclass
class Experiment:
    path: Path
    title: str
    description: str = ""
    tags: tuple[str, ...] = ()
    target: str | None = None
    plan: str | None = None
    load: LoadSpec | None = None
    steady_state: SloSet | None = None
    under_fault: SloSet | None = None
    method: tuple[Step, ...] = ()
    abort: tuple[AbortCondition, ...] = ()
    recovery_within: float | None = None
    recovery_window: float | None = None
    expect: tuple[Expectation, ...] = ()
    guard: GuardBounds = field(default_factory=GuardBounds)
    raw: dict[str, Any] = field(default_factory=dict)  # the document as written
    plain_ctk: bool = False  # no harness keys: a plain Chaos Toolkit experiment
    #: what the experiment takes from its plan (harness.plan.judge.PlanJudging), or None
    plan_judging: Any = None

    @property
    def faults(self) -> list[Step]:
        return [s for s in self.method if s.kind == "fault"]

    @property
    def name(self) -> str:
        return self.path.stem

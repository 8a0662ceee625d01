"""What a run decides, with the numbers that decided it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.checks.base import CheckResult
from harness.errors import VERDICT_EXIT


@dataclass
class SloResult:
    phase: str  # "steady-state" | "under-fault" | "recovery"
    label: str  # "availability >= 99% (users)"
    sli: str
    source: str
    objective: str
    observed: float | None
    rendered: str  # observed value as a person reads it: "97.2%"
    passed: bool
    t0: float
    t1: float
    worst_at: float | None = None  # when the worst second of the window was (client side)
    worst: str | None = None
    baseline: float | None = None  # the same SLI in the steady state (for under-fault/recovery)
    change: str | None = None  # e.g. "+302ms vs steady state"
    # the objective kept numeric, so nothing downstream re-parses its text
    objective_op: str | None = None
    objective_value: float | None = None
    unit: str | None = None  # ratio | seconds | number

    def sentence(self) -> str:
        when = f", worst {self.worst} at +{self.worst_at:.0f}s" if self.worst and self.worst_at is not None else ""
        change = f" ({self.change})" if self.change else ""
        verdict = "held" if self.passed else "BROKEN"
        return f"{self.phase}: {self.label} {verdict}: observed {self.rendered}{change}{when}"


@dataclass
class Verdict:
    status: str  # passed | failed | aborted | not-steady | interrupted | error
    reasons: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def exit_code(self) -> int:
        return VERDICT_EXIT[self.status]


@dataclass
class RunResult:
    run_id: str
    experiment: str
    title: str
    target: dict[str, Any]
    verdict: Verdict
    started_at: float
    ended_at: float
    slo_results: list[SloResult] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)  # description, injected_at, reverted_at
    abort: dict[str, Any] | None = None
    recovery: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    client_series: list[dict[str, Any]] = field(default_factory=list)  # per second
    target_series: list[dict[str, Any]] = field(default_factory=list)  # per second snapshots
    server_series: dict[str, list] = field(default_factory=dict)  # Prometheus range queries
    ctk_status: str | None = None
    journal_path: str | None = None
    report_path: str | None = None
    load: dict[str, Any] | None = None
    #: what the plan says of this run (harness.plan.run_hooks): rules, budget, policy
    plan: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

"""The operations plan as data: SLOs, alerts, routes, scaling, backups, chaos policy.

Every number in a plan records where it came from (:class:`Source`: the seed and its
section, or ``lab`` for a value the harness team chose for the lab) and whether the
source gives it only as an example. :meth:`Plan.numbers` lists them all, so a report
can say "99.9 % (seed 003, SLO; not an example)".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time as dtime
from typing import Any

from harness.quantities import Objective

SLI_QUERIES = {
    # SPEC §4 (aggregated forms); windows are filled in by whoever evaluates them.
    "availability": 'sum(rate(http_requests_total{{status!~"5.."}}[{w}])) / sum(rate(http_requests_total[{w}]))',
    "error-ratio": 'sum(rate(http_requests_total{{status=~"5.."}}[{w}])) / sum(rate(http_requests_total[{w}]))',
    "latency-p95": "histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket[{w}])) by (le))",
    "latency-p99": "histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket[{w}])) by (le))",
}
SEVERITIES = ("critical", "warning", "info")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Source:
    seed: str  # "000".."004", or "lab" (chosen for the lab, no seed gives it)
    section: str
    example: bool = False  # the seed gives the number only as an example
    note: str = ""  # e.g. how the lab adapted it ("for: 1m -> 10s so it fires within seconds")

    def __str__(self) -> str:
        where = "lab choice" if self.seed == "lab" else f"seed {self.seed} {self.section}".strip()
        if self.seed == "lab" and self.section:
            where += f" ({self.section})"
        out = where + ("; example" if self.example else "")
        return out + (f"; {self.note}" if self.note else "")


@dataclass(frozen=True)
class Num:
    """A number of the plan with its source. ``value`` is in base units (s, ratio)."""

    value: float
    text: str
    source: Source
    line: int = 0

    def __float__(self) -> float:
        return float(self.value)


@dataclass(frozen=True)
class SLO:
    name: str
    sli: str  # availability | error-ratio | latency-p95 | latency-p99
    objective: Objective
    objective_num: Num
    window: Num | None
    budget_unit: str  # "requests" or "minutes"
    source: Source
    line: int = 0

    def query(self, window: str = "5m") -> str:
        return SLI_QUERIES[self.sli].format(w=window)

    def error_budget_minutes(self) -> float | None:
        """Budget over the window in bad minutes (SPEC §4: 43,200 min x (1 - SLO) for 30 d)."""
        if self.objective.unit != "ratio" or self.window is None:
            return None
        good = self.objective.value if self.sli == "availability" else 1 - self.objective.value
        return self.window.value / 60.0 * (1 - good)


@dataclass(frozen=True)
class AlertRule:
    name: str
    expr: str  # PromQL with the threshold filled in
    for_: Num
    severity: str
    summary: str
    source: Source
    threshold: Num | None = None
    labels: dict[str, str] = field(default_factory=dict)
    line: int = 0

    def prometheus_rule(self) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": _prom_duration(self.for_.value),
            "labels": {"severity": self.severity, **self.labels},
            "annotations": {"summary": self.summary, "source": str(self.source)},
        }


@dataclass(frozen=True)
class Route:
    severity: str
    receiver: str
    channels: tuple[str, ...]
    respond_within: Num | None
    source: Source


@dataclass(frozen=True)
class Routing:
    group_wait: Num
    group_interval: Num
    repeat_interval: Num
    routes: dict[str, Route]  # by severity

    def receiver_for(self, severity: str) -> str | None:
        r = self.routes.get(severity)
        return r.receiver if r else None


@dataclass(frozen=True)
class ScalingPolicy:
    min_replicas: Num
    max_replicas: Num
    cpu_target: Num  # ratio of the CPU request
    scale_in_below: Num
    stabilisation_window: Num  # seconds
    scale_out_within: Num | None  # seconds: the plan's own time bound (no seed gives one)

    def orchestrator_policy(self) -> dict[str, Any]:
        """The keys the lab orchestrator reads from ``<run_dir>/scaling-policy.json``."""
        return {
            "min_replicas": int(self.min_replicas.value),
            "max_replicas": int(self.max_replicas.value),
            "cpu_target": self.cpu_target.value,
            "scale_in_below": self.scale_in_below.value,
            "scale_in_window": self.stabilisation_window.value,
        }


@dataclass(frozen=True)
class BackupPolicy:
    full_at: str  # "HH:MM", daily
    full_source: Source
    incremental_every: Num | None
    retention_full: Num
    rto: Num
    rpo: Num
    replication: str  # synchronous | asynchronous (the database's; RPO 0 needs synchronous)
    replication_source: Source
    restore_drills: str = ""


@dataclass(frozen=True)
class Period:
    name: str
    days: tuple[str, ...]  # weekday names; empty = every day
    start: dtime
    end: dtime
    dates: tuple[str, ...] = ()  # ISO dates (YYYY-MM-DD) for one-off periods (important events)
    source: Source | None = None

    def contains(self, when: datetime) -> bool:
        if self.dates and when.date().isoformat() not in self.dates:
            return False
        if self.days and DAYS[when.weekday()] not in self.days:
            return False
        t = when.time()
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # across midnight


@dataclass(frozen=True)
class ChaosPolicy:
    business_hours: Period
    forbidden: tuple[Period, ...]
    outside_business_hours: tuple[str, ...]  # fault kinds that may start only outside them
    one_at_a_time: bool
    source: Source

    def in_business_hours(self, when: datetime) -> bool:
        return self.business_hours.contains(when)

    def refusal(self, when: datetime, fault_kinds: list[str] | tuple[str, ...] = ()) -> str | None:
        """Why an experiment may not start at ``when`` (None: it may)."""
        for p in self.forbidden:
            if p.contains(when):
                return f"forbidden period '{p.name}' ({p.source})"
        strict = [k for k in fault_kinds if k in self.outside_business_hours]
        if strict and self.in_business_hours(when):
            bh = self.business_hours
            return (f"{', '.join(strict)} may start only outside business hours "
                    f"({'/'.join(bh.days)} {bh.start:%H:%M}-{bh.end:%H:%M}; {bh.source})")
        return None


@dataclass
class Plan:
    name: str
    path: str
    title: str
    sources: dict[str, str]
    slos: list[SLO]
    alerts: list[AlertRule]
    routing: Routing | None
    scaling: ScalingPolicy | None
    backup: BackupPolicy | None
    chaos: ChaosPolicy | None
    notes: str = ""

    def slo(self, name: str) -> SLO:
        for s in self.slos:
            if s.name == name:
                return s
        raise KeyError(f"plan '{self.name}' has no SLO '{name}' (it has: {', '.join(s.name for s in self.slos)})")

    def alert(self, name: str) -> AlertRule:
        for a in self.alerts:
            if a.name == name:
                return a
        raise KeyError(f"plan '{self.name}' has no alert '{name}' (it has: {', '.join(a.name for a in self.alerts)})")

    def numbers(self) -> list[tuple[str, Num]]:
        """Every number of the plan with where it is and where it came from."""
        out: list[tuple[str, Num]] = []
        for s in self.slos:
            out.append((f"slo {s.name} objective", s.objective_num))
            if s.window:
                out.append((f"slo {s.name} window", s.window))
        for a in self.alerts:
            if a.threshold:
                out.append((f"alert {a.name} threshold", a.threshold))
            out.append((f"alert {a.name} for", a.for_))
        if self.routing:
            for k in ("group_wait", "group_interval", "repeat_interval"):
                out.append((f"routes {k}", getattr(self.routing, k)))
            for r in self.routing.routes.values():
                if r.respond_within:
                    out.append((f"route {r.severity} respond-within", r.respond_within))
        if self.scaling:
            for k, v in vars(self.scaling).items():
                if isinstance(v, Num):
                    out.append((f"scaling {k}", v))
        if self.backup:
            for k, v in vars(self.backup).items():
                if isinstance(v, Num):
                    out.append((f"backup {k}", v))
        return out


def _prom_duration(seconds: float) -> str:
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{int(round(seconds * 1000))}ms"
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{int(round(seconds * 1000))}ms"

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


DEFAULT_SEVERITIES = ("critical", "warning", "info")
SEVERITIES = DEFAULT_SEVERITIES  # kept for callers of the lab plan; a plan may declare its own
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Sloth's default SLO period; SPEC.md §4's 43,200-minute month.
SLO_PERIOD_S = 30 * 86400.0


@dataclass(frozen=True)
class Source:
    seed: str  # "000".."004", "lab" (chosen for the lab) or "plan" (chosen by the plan: no seed gives it)
    section: str
    example: bool = False  # the seed gives the number only as an example
    note: str = ""  # e.g. how the lab adapted it ("for: 1m -> 10s so it fires within seconds")

    def __str__(self) -> str:
        if self.seed in ("lab", "plan"):
            where = "lab choice" if self.seed == "lab" else "plan choice (no seed gives it)"
        else:
            where = f"seed {self.seed} {self.section}".strip()
        if self.seed in ("lab", "plan") and self.section:
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
    """One SLO of a service, in Sloth's ``prometheus/v1`` shape (https://sloth.dev).

    ``objective`` is a ratio (Sloth writes a percentage: 99.9 -> 0.999). A latency SLO
    "p95 <= 500 ms" is the share of requests under the threshold: objective 95 %,
    ``threshold`` 0.5 s. ``sli_kind`` is ``plugin`` (an SLI of the harness vocabulary,
    ``plugin_id``), ``events`` (``error_query``/``total_query`` with ``{{.window}}``) or
    ``raw`` (``error_ratio_query``).
    """

    service: str
    name: str
    objective: float  # ratio, 0 < objective < 1
    objective_num: "Num"
    sli_kind: str
    plugin_id: str = ""  # canonical vocabulary name for plugin SLIs
    threshold: "Num | None" = None  # latency SLOs: the threshold in seconds
    error_query: str = ""
    total_query: str = ""
    error_ratio_query: str = ""
    selector: str = ""  # label matchers of the service for vocabulary SLIs
    description: str = ""
    sla: "Num | None" = None
    budget_unit: str = "requests"  # requests | minutes
    page: "dict[str, str] | None" = None  # Sloth page_alert labels (None: disabled)
    ticket: "dict[str, str] | None" = None
    alert_name: str = ""
    source: "Source | None" = None
    line: int = 0

    @property
    def id(self) -> str:
        return f"{self.service}-{self.name}"

    @property
    def sli(self) -> str:
        return self.plugin_id or self.sli_kind

    def error_budget_ratio(self) -> float:
        return 1.0 - self.objective

    def error_budget_minutes(self, days: float = 30.0) -> float:
        """Budget over the SLO period in minutes of total outage (SPEC §4: 43,200 x (1 - SLO))."""
        from harness.sli.vocabulary import monthly_budget_minutes

        return monthly_budget_minutes(self.objective, days)

    def error_budget_requests(self, per: float = 1_000_000) -> float:
        """Budget in requests: failed (or slow) requests allowed per ``per`` requests."""
        from harness.sli.vocabulary import error_budget

        return float(error_budget(self.objective, per, per)["allowed"])


@dataclass(frozen=True)
class Indicator:
    """What an alert compares with its threshold, in a form the harness can also feed
    with synthetic series for ``promtool test rules``.

    kind ``sli`` (a vocabulary SLI over ``window``), ``gauge`` (a selector, optionally
    aggregated), ``rate`` (increase of a counter per ``per``), ``ratio`` (bad/total
    counters over ``window``), ``expr`` (PromQL as written; tested only with ``test``).
    """

    kind: str
    selector: str = ""  # gauge/rate: the series selector; sli: extra label matchers
    sli: str = ""
    window: str = ""
    per: str = ""
    aggregate: str = ""
    absent_is: float | None = None
    bad: str = ""
    total: str = ""
    expr: str = ""
    test_series: tuple[tuple[str, str, float | None], ...] = ()  # (selector, gauge|counter, fixed value)
    test_fire: float | None = None
    test_quiet: float | None = None

    @property
    def testable(self) -> bool:
        return self.kind != "expr" or bool(self.test_series and self.test_fire is not None)


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
    op: str = ""
    indicator: Indicator | None = None
    service: str = ""
    slo: str = ""  # set for the burn-rate alerts generated from an SLO
    burn: tuple = ()  # ((long, short, factor), ...) for burn-rate alerts
    file: str = ""

    def prometheus_rule(self) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": _prom_duration(self.for_.value),
            "labels": {"severity": self.severity, **self.labels},
            "annotations": {"summary": self.summary, "source": str(self.source)},
        }


@dataclass(frozen=True)
class Receiver:
    name: str
    channels: tuple[str, ...]
    severities: tuple[str, ...]  # which severities reach it (the plan's expectation)
    respond_within: Num | None
    source: Source
    kind: str = "webhook"  # slack | pagerduty | email | webhook
    slack_channel: str = ""
    email_to: str = ""
    send_resolved: bool = True
    line: int = 0


@dataclass(frozen=True)
class Route:
    severity: str
    receiver: str
    channels: tuple[str, ...]
    respond_within: Num | None
    source: Source


@dataclass(frozen=True)
class Inhibition:
    name: str
    source_match: dict[str, str]
    target_match: dict[str, str]
    equal: tuple[str, ...]
    source: Source
    line: int = 0

    def matchers(self, which: dict[str, str]) -> list[str]:
        out = []
        for k, v in which.items():
            op = "=~" if "|" in v or ".*" in v else "="
            out.append(f'{k}{op}"{v}"')
        return out


@dataclass(frozen=True)
class Routing:
    group_wait: Num
    group_interval: Num
    repeat_interval: Num
    routes: dict[str, Route]  # by severity: the first receiver of each (the lab's one-to-one form)
    receivers: tuple[Receiver, ...] = ()
    group_by: tuple[str, ...] = ("alertname",)
    default_receiver: str = "default"
    source: Source | None = None

    def receiver_for(self, severity: str) -> str | None:
        r = self.routes.get(severity)
        return r.receiver if r else None

    def receivers_for(self, severity: str) -> list[str]:
        """Every receiver the plan says an alert of ``severity`` reaches, in order."""
        return [r.name for r in self.receivers if severity in r.severities]


@dataclass(frozen=True)
class Fact:
    """A number or rule of the plan that the harness shows (and a drill or experiment may
    check) but does not turn into monitoring: "scale out at request queue > 100"."""

    what: str
    value: str
    source: Source
    num: Num | None = None
    line: int = 0


@dataclass(frozen=True)
class ScalingPolicy:
    min_replicas: Num | None
    max_replicas: Num | None
    cpu_target: Num | None  # ratio of the CPU request
    scale_in_below: Num | None
    stabilisation_window: Num | None  # seconds
    scale_out_within: Num | None  # seconds: the plan's own time bound (no seed gives one)
    memory_target: Num | None = None
    target: str = ""  # which deployment/service the HPA scales
    replicas_today: Num | None = None
    triggers: tuple[Fact, ...] = ()
    capacity: tuple[Fact, ...] = ()
    source: Source | None = None
    #: seconds desired and current may differ in one stretch (seed 002 §7.2: 5 min)
    mismatch_within: Num | None = None

    def orchestrator_policy(self) -> dict[str, Any]:
        """The keys the lab orchestrator reads from ``<run_dir>/scaling-policy.json``."""
        need = [self.min_replicas, self.max_replicas, self.cpu_target, self.scale_in_below, self.stabilisation_window]
        if any(n is None for n in need):
            raise ValueError("the plan's scaling section lacks min/max replicas, cpu-target, scale-in-below "
                             "or stabilisation-window: the lab orchestrator needs all of them")
        return {
            "min_replicas": int(self.min_replicas.value),
            "max_replicas": int(self.max_replicas.value),
            "cpu_target": self.cpu_target.value,
            "scale_in_below": self.scale_in_below.value,
            "scale_in_window": self.stabilisation_window.value,
        }


@dataclass(frozen=True)
class BackupTier:
    target: str  # database, files, config, logs, secrets...
    method: str
    schedule: str
    retention: str
    rpo: Num | None
    rto: Num | None
    source: Source
    line: int = 0


@dataclass(frozen=True)
class BackupPolicy:
    full_at: str  # "HH:MM", daily ("" when the plan gives no time)
    full_source: Source | None
    incremental_every: Num | None
    retention_full: Num | None
    rto: Num | None
    rpo: Num | None
    replication: str  # synchronous | asynchronous (the database's; RPO 0 needs synchronous)
    replication_source: Source | None
    restore_drills: str = ""
    tiers: tuple[BackupTier, ...] = ()
    restore_tests: tuple[Fact, ...] = ()
    dr_steps: tuple[str, ...] = ()
    dr_source: Source | None = None
    rules: tuple[Fact, ...] = ()  # 3-2-1, encryption, "secrets too", checks that the backup ran...


@dataclass(frozen=True)
class IncidentLevel:
    level: str
    name: str
    definition: str
    respond: Num | None
    resolve: Num | None
    respond_text: str
    resolve_text: str
    source: Source


@dataclass(frozen=True)
class Incidents:
    levels: tuple[IncidentLevel, ...]
    escalation: dict[str, tuple[tuple[str, str], ...]]  # level -> ((after, who), ...)
    escalation_source: Source | None
    facts: tuple[Fact, ...] = ()


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
    alerts: list[AlertRule]  # the plan's own alerts, then the SLOs' burn-rate alerts
    routing: Routing | None
    scaling: ScalingPolicy | None
    backup: BackupPolicy | None
    chaos: ChaosPolicy | None
    notes: str = ""
    severities: tuple[str, ...] = DEFAULT_SEVERITIES
    severities_source: Source | None = None
    selector: str = ""
    services: list[dict[str, Any]] = field(default_factory=list)  # name, description, source, targets
    inhibitions: list[Inhibition] = field(default_factory=list)
    maintenance: list[Period] = field(default_factory=list)
    maintenance_note: str = ""
    incidents: Incidents | None = None
    policy: list[Fact] = field(default_factory=list)
    derived_from: str = ""

    def slo(self, name: str) -> SLO:
        for s in self.slos:
            if name in (s.name, s.id, f"{s.service}/{s.name}"):
                return s
        raise KeyError(f"plan '{self.name}' has no SLO '{name}' (it has: {', '.join(s.id for s in self.slos)})")

    def alert(self, name: str) -> AlertRule:
        for a in self.alerts:
            if a.name == name:
                return a
        raise KeyError(f"plan '{self.name}' has no alert '{name}' (it has: {', '.join(a.name for a in self.alerts)})")

    def numbers(self) -> list[tuple[str, Num]]:
        """Every number of the plan with where it is and where it came from."""
        out: list[tuple[str, Num]] = []
        for s in self.slos:
            out.append((f"slo {s.id} objective", s.objective_num))
            if s.threshold:
                out.append((f"slo {s.id} threshold", s.threshold))
            if s.sla:
                out.append((f"slo {s.id} sla", s.sla))
        for a in self.alerts:
            if a.threshold:
                out.append((f"alert {a.name} threshold", a.threshold))
            out.append((f"alert {a.name} for", a.for_))
        if self.routing:
            for k in ("group_wait", "group_interval", "repeat_interval"):
                out.append((f"routes {k}", getattr(self.routing, k)))
            for r in self.routing.receivers:
                if r.respond_within:
                    out.append((f"receiver {r.name} respond-within", r.respond_within))
        if self.scaling:
            for k, v in vars(self.scaling).items():
                if isinstance(v, Num):
                    out.append((f"scaling {k}", v))
            for f in (*self.scaling.triggers, *self.scaling.capacity):
                if f.num:
                    out.append((f"scaling {f.what}", f.num))
        if self.backup:
            for k, v in vars(self.backup).items():
                if isinstance(v, Num):
                    out.append((f"backup {k}", v))
            for t in self.backup.tiers:
                for k in ("rpo", "rto"):
                    if getattr(t, k):
                        out.append((f"backup {t.target} {k}", getattr(t, k)))
        if self.incidents:
            for lv in self.incidents.levels:
                for k in ("respond", "resolve"):
                    if getattr(lv, k):
                        out.append((f"incident {lv.level} {k}", getattr(lv, k)))
        for f in self.policy:
            if f.num:
                out.append((f"policy {f.what}", f.num))
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

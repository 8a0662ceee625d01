"""No lasting damage: the system is not left worse than the run found it.

A set of gauges (connections, replication lag, restarts, memory, open files, disk,
alerts, leftover fault rules...) is read just before the first fault is injected and
again after the run has recovered. A gauge worse than before by more than its
tolerance fails the run, with its before/after values and the tolerance; a gauge that
cannot be read is tried again every second for ``READ_RETRY`` (10 s, or up to the
settle deadline), and one still unreadable makes the check "could not verify" (fail
closed). A reading that came good when tried again is named in the evidence.

The expectation is ``no-lasting-damage``. A target offers it by registering a subclass
of :class:`LastingDamage` that names its gauges and reads them (the lab's is
``harness/targets/lab/checks/damage.py``); a subclass with ``default = True`` is on for
every experiment on that target (:func:`with_defaults`, applied when an experiment is
bound). An experiment overrides tolerances or switches it off, with a reason::

    expect:
      - no-lasting-damage: {tolerances: {db-half-open: 4, memory-mb: "40%"}}
      - no-lasting-damage: {off: "the experiment restores the database from backup"}

It is cheap: one reading before, one after (a second or so each); only a gauge found
worse is read again (every second, up to ``settle``) before it is judged, and an alert
that started firing during the run is given ``alert-grace`` to resolve.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from harness.checks.base import Check, CheckResult, RunClock, unverified
from harness.quantities import parse_duration

if TYPE_CHECKING:
    from harness.experiment.model import Experiment
    from harness.targets.base import Target

KIND = "no-lasting-damage"
SETTLE = 20.0  # seconds a worse gauge may take to come back (e.g. TCP keepalives: 11 s)
ALERT_GRACE = 60.0  # seconds an alert that started during the run may take to resolve
#: seconds a reading that fails is tried again (every second) before the check gives up
#: on it: a source busy for a moment (Prometheus answering /api/v1/alerts in more than
#: 2 s just after a failover, measured in CI) is not "could not verify"; one unreadable
#: for this long is (fail closed)
READ_RETRY = 10.0


def _retried(read, stop: threading.Event | None, until: float | None = None):
    """``read()``, tried again every second while it raises, up to ``READ_RETRY`` seconds
    (or up to ``until``, a wall-clock deadline, if that is later) or until ``stop`` is set.
    Returns ``(reading, errors of the attempts that failed first)``; when every attempt
    fails, raises the last error with how long the source stayed unreadable."""
    t0 = time.monotonic()
    limit = max(READ_RETRY, (until - time.time()) if until else 0.0)
    errors: list[str] = []
    while True:
        try:
            return read(), errors
        except Exception as exc:  # noqa: BLE001 - tried again, then raised with its history
            errors.append(str(exc) or type(exc).__name__)
            spent = time.monotonic() - t0
            stopped = spent >= limit or (stop.wait(1.0) if stop is not None else time.sleep(1.0))
            if stopped:
                tries = f" (unreadable for {spent:.0f}s, {len(errors)} tries)" if len(errors) > 1 else ""
                raise RuntimeError(errors[-1] + tries) from exc


@dataclass(frozen=True)
class Gauge:
    name: str
    unit: str
    tolerance: float | str  # allowed change for the worse: an amount in ``unit``, or "N%" of before
    what: str
    #: "up": a higher value is worse (connections, memory); "down": lower is worse
    worse: str = "up"
    #: "before": compared with the reading before the first fault; "revert": with the
    #: reading when the last fault was reverted (a count a fault moves on purpose, such as
    #: restarts after a kill: only what happens after the fault ended is damage)
    baseline: str = "before"


def allowed(tolerance: float | str, before: float) -> float:
    """How much worse than ``before`` a gauge may end."""
    if isinstance(tolerance, str) and tolerance.strip().endswith("%"):
        return abs(before) * float(tolerance.strip()[:-1]) / 100.0
    return float(tolerance)


def tolerance_problem(value: Any) -> str | None:
    if isinstance(value, bool):
        return "a tolerance is a number or a percentage such as \"20%\""
    if isinstance(value, (int, float)):
        return None if value >= 0 else "a tolerance cannot be negative"
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return None if float(value.strip()[:-1]) >= 0 else "a tolerance cannot be negative"
        except ValueError:
            pass
    return f"tolerance {value!r} is neither a number nor a percentage such as \"20%\""


class LastingDamage(Check):
    """Before/after gauges; subclasses name them (``gauges``) and read them (``read``)."""

    kind = KIND
    #: alerts that mark an event and fire for a fixed time by design: never "left firing"
    EVENT_ALERTS: tuple[str, ...] = ()
    #: on for every experiment on this target unless the experiment names it
    default: ClassVar[bool] = False
    gauges: ClassVar[tuple[Gauge, ...]] = ()
    #: where the readings come from, for the result's evidence
    sources: ClassVar[str] = ""

    def __init__(self, target: "Target", params: dict[str, Any]):
        super().__init__(target, params)
        self.before: dict[str, float] | None = None
        self.before_alerts: set[str] | None = None
        self.before_error: str | None = None
        self.before_seconds = 0.0
        #: readings that failed and came good when tried again (named in the evidence)
        self.retried: list[str] = []

    # -- what a target provides --------------------------------------------------------
    def read(self) -> dict[str, float]:
        """Every gauge now (name -> value). Raise with the reason when one cannot be read."""
        raise NotImplementedError

    def read_at_revert(self) -> dict[str, float]:
        """The gauges whose baseline is "revert", read as soon as the last fault is reverted.
        Raise with the reason when one cannot be read."""
        return {}

    def firing_alerts(self) -> set[str] | None:
        """Alerts firing now (``alertname{labels}``), or None if the target has no alerting.
        Raise when alerting exists but cannot be read."""
        return None

    # -- parameters ---------------------------------------------------------------------
    def problems(self) -> list[str]:
        out = []
        names = {g.name for g in self.gauges}
        for name, value in (self.params.get("tolerances") or {}).items():
            if name not in names:
                out.append(f"no gauge '{name}' on the {self.target.kind} target (its gauges: {', '.join(sorted(names))})")
            elif (p := tolerance_problem(value)) is not None:
                out.append(f"{name}: {p}")
        return out

    def tolerance(self, g: Gauge) -> float | str:
        return (self.params.get("tolerances") or {}).get(g.name, g.tolerance)

    @property
    def off(self) -> str | None:
        return self.params.get("off")

    def describe(self) -> str:
        if self.off:
            return f"{self.kind} (off: {self.off})"
        return f"{self.kind} ({len(self.gauges)} gauges)"

    # -- the check ---------------------------------------------------------------------
    def before_method(self) -> None:
        """Called just before the first fault is injected (the run's load is on)."""
        if self.off:
            return
        t0 = time.monotonic()
        try:
            self.before, e1 = _retried(self.read, None)
            self.before_alerts, e2 = _retried(self.firing_alerts, None)
            self.retried += [f"before the fault: {e}" for e in e1 + e2]
        except Exception as exc:  # noqa: BLE001 - judged (could not verify) in run()
            self.before_error = str(exc) or type(exc).__name__
        self.before_seconds = time.monotonic() - t0

    def run(self, clock: RunClock) -> CheckResult:
        if self.off:
            return CheckResult(self.kind, True, f"not checked: switched off by the experiment ({self.off})",
                               {"off": self.off}, ["switched off in the experiment"])
        if self.before_error or self.before is None:
            return unverified(self.kind, f"the gauges could not be read before the fault: "
                                         f"{self.before_error or 'not read'}")
        if not _wait_reverted(clock):
            return CheckResult(self.kind, False, "the run stopped before its faults were reverted: lasting damage "
                                                 "not measured", {}, ["the run was stopped (abort or interrupt)"],
                               verified=False)
        at_revert = self._at_revert()
        if isinstance(at_revert, str):
            return unverified(self.kind, at_revert, {"before": self.before})
        self.before.update(at_revert)
        # A run that ended early (aborted, or its hypothesis already failed: Chaos Toolkit
        # then skips the expectations probe and the run waits only seconds for its checks)
        # gets one reading, without the settle time or the alerts' grace.
        early = not _wait_recovered(clock)
        t0 = time.monotonic()
        settle = 0.0 if early else parse_duration(self.params.get("settle", SETTLE))
        grace = parse_duration(self.params.get("alert-grace", ALERT_GRACE))
        try:
            after, worse = self._settled(time.time() + settle, clock)
            alerts = None if early or clock.stop.is_set() else self._alerts(time.time() + grace, clock)
        except Exception as exc:  # noqa: BLE001 - fail closed
            return unverified(self.kind, f"the gauges could not be read after recovery: {exc}",
                              {"before": self.before})
        result = self._judge(after, worse, alerts, time.monotonic() - t0)
        if early or clock.stop.is_set():
            result.summary += " (read once as the run ended early: no time to settle; alerts not judged)"
            result.evidence.append("the run ended before recovery was confirmed: one reading, no settle time")
        return result

    def judge_now(self, settle: float | None = None, grace: float | None = None,
                  stop: threading.Event | None = None, start_phase: str = "before the first run") -> CheckResult:
        """Outside a run: the gauges now against ``before_method()``'s reading (a soak's
        end against its start). Gauges whose baseline is "revert" (counts a fault moves on
        purpose, such as restarts after a kill) are judged by each run, not here."""
        from types import SimpleNamespace

        if self.before_error or self.before is None:
            return unverified(self.kind, f"the gauges could not be read at the start: "
                                         f"{self.before_error or 'not read'}")
        settle = SETTLE if settle is None else settle
        grace = ALERT_GRACE if grace is None else grace
        clock = SimpleNamespace(stop=stop or threading.Event())
        gauges = tuple(g for g in self.gauges if g.baseline != "revert")
        t0 = time.monotonic()
        try:
            after, worse = self._settled(time.time() + settle, clock, gauges)  # type: ignore[arg-type]
            alerts = self._alerts(time.time() + grace, clock)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - fail closed
            return unverified(self.kind, f"the gauges could not be read at the end: {exc}", {"before": self.before})
        result = self._judge(after, worse, alerts, time.monotonic() - t0, gauges)
        result.evidence[-1] = f"phase: {start_phase}, and after the last run"
        return result

    def _at_revert(self) -> dict[str, float] | str:
        try:
            got, errors = _retried(self.read_at_revert, None)
            self.retried += [f"when the fault was reverted: {e}" for e in errors]
            return got
        except Exception as exc:  # noqa: BLE001 - fail closed
            return f"the gauges could not be read when the fault was reverted: {exc}"

    def _settled(self, deadline: float, clock: RunClock,
                 gauges: tuple[Gauge, ...] | None = None) -> tuple[dict[str, float], list[str]]:
        """Read every gauge; re-read while some (of ``gauges``, default all) are worse than
        allowed, up to ``deadline`` (or until the run ends)."""
        while True:
            after, errors = _retried(self.read, clock.stop, deadline)
            self.retried += [f"after recovery: {e}" for e in errors]
            worse = [g.name for g in (self.gauges if gauges is None else gauges) if not self._within(g, after)]
            if not worse or time.time() >= deadline or clock.stop.wait(1.0):
                return after, worse

    def _within(self, g: Gauge, after: dict[str, float]) -> bool:
        b, a = self.before[g.name], after[g.name]
        change = (a - b) if g.worse == "up" else (b - a)
        return change <= allowed(self.tolerance(g), b) + 1e-9

    def _alerts(self, deadline: float, clock: RunClock) -> dict[str, Any] | None:
        """Alerts firing now that were not firing before, after waiting for them to resolve."""
        if self.before_alerts is None:
            return None
        ignore = set(self.params.get("ignore-alerts") or ()) | set(self.EVENT_ALERTS)
        while True:
            now, errors = _retried(self.firing_alerts, clock.stop, deadline)
            now = now or set()
            self.retried += [f"alerts after recovery: {e}" for e in errors]
            new = sorted(a for a in now - self.before_alerts if a.split("{")[0] not in ignore)
            if not new or time.time() >= deadline or clock.stop.wait(1.0):
                return {"before": sorted(self.before_alerts), "after": sorted(now), "new": new}

    def _judge(self, after: dict[str, float], worse: list[str], alerts: dict[str, Any] | None,
               seconds: float, gauges: tuple[Gauge, ...] | None = None) -> CheckResult:
        rows = []
        for g in (self.gauges if gauges is None else gauges):
            b, a = self.before[g.name], after[g.name]
            tol = self.tolerance(g)
            rows.append({"gauge": g.name, "unit": g.unit, "baseline": g.baseline, "before": _r(b), "after": _r(a), "change": _r(a - b),
                         "tolerance": (f"{tol}" if isinstance(tol, str) else f"{'+' if g.worse == 'up' else '-'}{tol:g}"),
                         "allowed": _r(allowed(tol, b)), "worse": g.worse, "ok": g.name not in worse,
                         "what": g.what})
        failures = [f"{r['gauge']} {r['before']:g} -> {r['after']:g} {r['unit']} "
                    f"(tolerance {r['tolerance']})".replace("  ", " ") for r in rows if not r["ok"]]
        measured: dict[str, Any] = {"gauges": rows, "before_read_seconds": round(self.before_seconds, 2),
                                    "after_read_seconds": round(seconds, 2)}
        if alerts is not None:
            measured["alerts"] = alerts
            if alerts["new"]:
                failures.append(f"alerts still firing that were not before: {', '.join(alerts['new'])}")
        evidence = [self.sources or "target gauges", "phase: just before the first injection, and after recovery"]
        if self.retried:
            measured["read_retries"] = list(self.retried)
            evidence.insert(1, f"{len(self.retried)} reading(s) failed and came good when tried again: "
                               + "; ".join(self.retried[:3]) + (" ..." if len(self.retried) > 3 else ""))
        if failures:
            return CheckResult(self.kind, False, "lasting damage: " + "; ".join(failures), measured, evidence)
        return CheckResult(self.kind, True, f"no lasting damage: {len(rows)} gauges back within tolerance"
                                            + (", no alert left firing" if alerts is not None else ""),
                           measured, evidence)


def _r(v: float) -> float:
    return round(float(v), 2)


def _wait_reverted(clock: RunClock) -> bool:
    while not clock.reverted.wait(0.2):
        if clock.stop.is_set():
            return False
    return True


def _wait_recovered(clock: RunClock) -> bool:
    """Until the run has measured its recovery (with no run: once the faults are reverted).
    False when the run ended first."""
    from harness.engine import context

    run = context.current_or_none()
    while run is not None and run.recovered_at is None:
        if clock.stop.wait(0.2):
            return run.recovered_at is not None and not run.abort_event.is_set()
    return not clock.stop.is_set()


def with_defaults(exp: "Experiment", target: "Target") -> tuple:
    """The experiment's expectations plus every default one the target offers that the
    experiment does not name (e.g. ``no-lasting-damage`` on the lab)."""
    from harness.experiment.model import Expectation

    if exp.plain_ctk:
        return exp.expect
    named = {e.kind for e in exp.expect}
    extra = tuple(Expectation(kind, {}, None) for kind, cls in sorted(target.checks().items())
                  if getattr(cls, "default", False) and kind not in named)
    return exp.expect + extra

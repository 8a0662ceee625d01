"""alert-fires and alert-silent on the lab: Alertmanager API v2 + the recording webhook.

alert-fires  alert (name), within (from injection), severity, receiver, labels.
             Polls Alertmanager's active alerts every 0.25 s and the webhook receiver's
             records. Measures injection -> alert active in Alertmanager and injection ->
             notification received by the receiver the plan routes its severity to (or
             ``receiver`` when given). Passes when both happen within ``within``. An
             alert already firing before the injection does not count.
alert-silent alert. Watches from injection until the fault is reverted plus the alert's
             ``for`` (from the plan) + 5 s; fails if the alert is ever active.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from harness.checks.base import Check, CheckResult, RunClock, unverified
from harness.errors import InvalidInput
from harness.lab.alerting import active_alerts, load_lab_plan, notifications
from harness.quantities import format_duration, parse_duration
from harness.targets import registry

POLL = 0.25


def parse_rfc3339(value: str | None) -> float | None:
    if not value:
        return None
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", value)
    if not m:
        return None
    frac = (m.group(2) or ".0")[:7]
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + frac + tz).astimezone(timezone.utc).timestamp()


def _labels_match(alert: dict, want: dict) -> bool:
    labels = alert.get("labels", {})
    return all(str(labels.get(k)) == str(v) for k, v in want.items())


#: a stretch longer than this without a successful read of Alertmanager makes a
#: negative conclusion ("did not fire", "stayed silent") unverifiable
BLIND_AFTER = 2.0


class _Reads:
    """Successful and failed reads of a source, and the longest stretch it was unreadable."""

    def __init__(self, source: str):
        self.source = source
        self.ok = self.failed = 0
        self.last_ok: float | None = None
        self.blind_since: float | None = None
        self.longest_blind = 0.0
        self.last_error = ""

    def success(self, now: float) -> None:
        self.ok += 1
        self.last_ok = now
        self.blind_since = None

    def failure(self, now: float, exc: Exception) -> None:
        self.failed += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.blind_since = self.blind_since or (self.last_ok or now)
        self.longest_blind = max(self.longest_blind, now - self.blind_since)

    def blind(self) -> bool:
        return self.longest_blind > BLIND_AFTER or self.ok == 0

    def evidence(self) -> str:
        return (f"{self.source}: {self.ok} reads, {self.failed} failed, longest unreadable "
                f"{format_duration(self.longest_blind)}" + (f" (last error: {self.last_error})" if self.failed else ""))


def _phase(t: float, clock: RunClock) -> str:
    if clock.reverted_at is not None and t >= clock.reverted_at:
        return "after the revert"
    return "while the fault was active"


class _PlanAlertCheck(Check):
    """Shared by the alert checks: the plan's rule for the alert, resolved once, and its
    problems reported as input errors before anything runs (never swallowed)."""

    def __init__(self, target, params):
        super().__init__(target, params)
        self._plan = None
        self._plan_error: str | None = None
        try:
            self._plan = load_lab_plan(target.cfg)
        except InvalidInput as exc:  # the target lacks what alert checks read: said as it is
            self._plan_error = str(exc)
        except Exception as exc:  # noqa: BLE001 - reported by problems(), exit 2
            self._plan_error = f"cannot read the target's operations plan: {type(exc).__name__}: {exc}"

    def rule(self):
        if self._plan is None:
            return None
        try:
            return self._plan.alert(self.params["alert"])
        except KeyError:
            return None

    def plan_problems(self) -> list[str]:
        if self._plan_error:
            return [self._plan_error]
        return []

    def not_in_plan(self, unknown: str) -> str:
        """The input error for an alert the plan does not define; ``unknown`` says what
        the check then cannot know."""
        known = ", ".join(a.name for a in self._plan.alerts) if self._plan else ""
        return (f"alert {self.params['alert']!r} is not in the plan, so {unknown}; use one of the plan's "
                f"alerts ({known})")


@registry.check("lab")
class LabAlertFires(_PlanAlertCheck):
    kind = "alert-fires"

    def expected_receiver(self) -> str | None:
        if self.params.get("receiver"):
            return str(self.params["receiver"])
        severity = self.params.get("severity")
        rule = self.rule()
        if severity is None and rule is not None:
            severity = rule.severity
        if severity is None or self._plan is None or self._plan.routing is None:
            return None
        return self._plan.routing.receiver_for(severity)

    def problems(self) -> list[str]:
        out = self.plan_problems()
        if out:
            return out
        name = self.params["alert"]
        if self.params.get("receiver"):
            return []
        if self.rule() is None and not self.params.get("severity"):
            known = ", ".join(a.name for a in self._plan.alerts) if self._plan else ""
            return [f"alert {name!r} is not in the plan, so its receiver is unknown: name it (receiver:) or its "
                    f"severity (severity:), or use one of the plan's alerts ({known})"]
        if self.expected_receiver() is None:
            sev = self.params.get("severity") or self.rule().severity
            return [f"the plan routes no receiver for severity {sev!r} (alert {name})"]
        return []

    def precondition(self, timeout: float) -> str | None:
        """An alert still firing from an earlier event (e.g. a failover in the last
        minute) would hide whether this fault fires it: wait for it to resolve."""
        name = self.params["alert"]
        deadline = time.time() + timeout
        while True:
            try:
                if not active_alerts(self.target.cfg, name):
                    return None
            except Exception as exc:  # noqa: BLE001 - not knowing is not ready
                return f"cannot ask Alertmanager about {name}: {exc}"
            if time.time() > deadline:
                return f"alert {name} was still firing from an earlier event after waiting {timeout:.0f}s"
            time.sleep(1.0)

    def run(self, clock: RunClock) -> CheckResult:
        cfg = self.target.cfg
        name = self.params["alert"]
        within = parse_duration(self.params["within"])
        want_labels = dict(self.params.get("labels") or {})
        if self.params.get("severity"):
            want_labels["severity"] = self.params["severity"]
        receiver = self.expected_receiver()
        t0 = clock.injected_at or time.time()
        deadline = t0 + within
        fired_at = starts_at = notified_at = None
        stale = False
        polls = 0
        am, hook = _Reads("alertmanager /api/v2/alerts"), _Reads("webhook receiver log")
        while True:
            now = time.time()
            polls += 1
            if fired_at is None:
                try:
                    alerts = active_alerts(cfg, name)
                    am.success(now)
                    for a in alerts:
                        if not _labels_match(a, want_labels):
                            continue
                        s = parse_rfc3339(a.get("startsAt"))
                        if s is not None and s < t0 - 2.0:
                            stale = True  # was firing before the fault: not caused by it
                            continue
                        fired_at, starts_at = now, s
                        break
                except Exception as exc:  # noqa: BLE001 - counted; a blind negative is "could not verify"
                    am.failure(now, exc)
            if notified_at is None:
                try:
                    found = notifications(cfg, since=t0 - 1.0, alert=name, receiver=receiver)
                    hook.success(now)
                    for n in found:
                        if n.get("status") == "firing" and _labels_match(n, want_labels):
                            s = parse_rfc3339(n.get("starts_at"))
                            if s is not None and s < t0 - 2.0:
                                continue
                            notified_at = n["received_at"]
                            break
                except Exception as exc:  # noqa: BLE001 - counted; a blind negative is "could not verify"
                    hook.failure(now, exc)
            if fired_at is not None and notified_at is not None:
                break
            if now >= deadline or not clock.wait_until(min(deadline, now + POLL)):
                break
        measured = {
            "alert": name,
            "within_s": within,
            "receiver": receiver,
            "fired_after_s": round(fired_at - t0, 3) if fired_at else None,
            "starts_at_after_s": round(starts_at - t0, 3) if starts_at else None,
            "notified_after_s": round(notified_at - t0, 3) if notified_at else None,
            "polls": polls,
            "poll_errors": am.failed + hook.failed,
        }
        evidence = [am.evidence(), hook.evidence()]
        if fired_at is not None:
            evidence.append(f"fired {_phase(fired_at, clock)}")
        rule = self.rule()
        if rule is not None:
            measured["rule_for_s"] = rule.for_.value
        if fired_at is None:
            if am.blind():
                return unverified(self.kind, f"whether alert {name} fired within {format_duration(within)}: "
                                             f"Alertmanager could not be read ({am.evidence()})", measured, evidence)
            why = f"alert {name} did not fire within {format_duration(within)}"
            if stale:
                why += " (it was already firing before the fault: a leftover, not this fault's)"
            elif rule is None:
                why += " (the plan has no rule of that name)"
            return CheckResult(self.kind, False, why, measured, evidence)
        if notified_at is None:
            if hook.blind():
                return unverified(self.kind, f"whether '{receiver}' was notified of {name}: the receiver's log "
                                             f"could not be read ({hook.evidence()})", measured, evidence)
            return CheckResult(
                self.kind, False,
                f"alert {name} fired after {format_duration(fired_at - t0)} but no notification reached "
                f"receiver '{receiver}' within {format_duration(within)}", measured, evidence)
        ok = fired_at - t0 <= within and notified_at - t0 <= within
        return CheckResult(
            self.kind, ok,
            f"alert {name} fired after {format_duration(fired_at - t0)}, notification to '{receiver}' "
            f"after {format_duration(notified_at - t0)} (within {format_duration(within)})",
            measured, evidence)


@registry.check("lab")
class LabAlertSilent(_PlanAlertCheck):
    kind = "alert-silent"

    def problems(self) -> list[str]:
        out = self.plan_problems()
        if out:
            return out
        if self.rule() is None:
            return [self.not_in_plan("how long it may take to fire (its 'for') is unknown")]
        return []

    def run(self, clock: RunClock) -> CheckResult:
        cfg = self.target.cfg
        name = self.params["alert"]
        rule = self.rule()
        grace = (rule.for_.value if rule is not None else 10.0) + 5.0
        t0 = clock.injected_at or time.time()
        seen_at = started_at = None
        polls = 0
        ended_at = None
        am = _Reads("alertmanager /api/v2/alerts")
        while True:
            now = time.time()
            polls += 1
            try:
                firing = active_alerts(cfg, name)
                am.success(now)
                if firing:
                    seen_at = now
                    started = [parse_rfc3339(a.get("startsAt")) for a in firing]
                    started_at = min((s for s in started if s is not None), default=None)
                    break
            except Exception as exc:  # noqa: BLE001 - counted: a blind "silent" is "could not verify"
                am.failure(now, exc)
            if clock.reverted.is_set() and clock.reverted_at is not None and now >= clock.reverted_at + grace:
                ended_at = now
                break
            if clock.stop.is_set():
                ended_at = now
                break
            if not clock.wait_until(now + POLL):
                ended_at = time.time()
                break
        measured = {"alert": name, "polls": polls, "poll_errors": am.failed, "grace_after_revert_s": grace}
        evidence = [am.evidence()]
        if seen_at is not None:
            measured["fired_after_s"] = round(seen_at - t0, 3)
            evidence.append(f"fired {_phase(seen_at, clock)}")
            if started_at is not None and started_at < t0:
                measured["firing_since_s_before_injection"] = round(t0 - started_at, 3)
                return CheckResult(self.kind, False,
                                   f"alert {name} was already firing {format_duration(t0 - started_at)} before "
                                   f"the injection (it should have stayed silent; the run started on a system "
                                   f"that was not quiet)", measured, evidence)
            return CheckResult(self.kind, False,
                               f"alert {name} fired {format_duration(seen_at - t0)} after the injection "
                               f"(it should have stayed silent)", measured, evidence)
        measured["watched_s"] = round((ended_at or time.time()) - t0, 3)
        if am.blind():
            return unverified(self.kind, f"that alert {name} stayed silent: Alertmanager could not be read "
                                         f"for {format_duration(am.longest_blind)} of the "
                                         f"{format_duration(measured['watched_s'])} watched ({am.evidence()})",
                              measured, evidence)
        evidence.append("watched from the injection until the revert + the alert's for + 5 s")
        return CheckResult(self.kind, True,
                           f"alert {name} stayed silent for {format_duration(measured['watched_s'])}",
                           measured, evidence)

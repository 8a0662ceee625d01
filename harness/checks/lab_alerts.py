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

from harness.checks.base import Check, CheckResult, RunClock
from harness.lab.alerting import active_alerts, load_lab_plan, notifications
from harness.quantities import format_duration, parse_duration

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


class LabAlertFires(Check):
    kind = "alert-fires"

    def _plan_rule(self):
        try:
            return load_lab_plan(self.target.cfg).alert(self.params["alert"])
        except Exception:  # noqa: BLE001 - an alert may come from elsewhere
            return None

    def expected_receiver(self) -> str | None:
        if self.params.get("receiver"):
            return str(self.params["receiver"])
        severity = self.params.get("severity")
        rule = self._plan_rule()
        if severity is None and rule is not None:
            severity = rule.severity
        if severity is None:
            return None
        try:
            routing = load_lab_plan(self.target.cfg).routing
        except Exception:  # noqa: BLE001
            return None
        return routing.receiver_for(severity) if routing else None

    def precondition(self, timeout: float) -> str | None:
        """An alert still firing from an earlier event (e.g. a failover in the last
        minute) would hide whether this fault fires it: wait for it to resolve."""
        from harness.lab.alerting import active_alerts

        name = self.params["alert"]
        deadline = time.time() + timeout
        while True:
            try:
                if not active_alerts(self.target.cfg, name):
                    return None
            except Exception as exc:  # noqa: BLE001
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
        polls = errors = 0
        last_error = ""
        while True:
            now = time.time()
            polls += 1
            if fired_at is None:
                try:
                    for a in active_alerts(cfg, name):
                        if not _labels_match(a, want_labels):
                            continue
                        s = parse_rfc3339(a.get("startsAt"))
                        if s is not None and s < t0 - 2.0:
                            stale = True  # was firing before the fault: not caused by it
                            continue
                        fired_at, starts_at = now, s
                        break
                except Exception as exc:  # noqa: BLE001
                    errors += 1
                    last_error = f"{type(exc).__name__}: {exc}"
            if notified_at is None:
                try:
                    for n in notifications(cfg, since=t0 - 1.0, alert=name, receiver=receiver):
                        if n.get("status") == "firing" and _labels_match(n, want_labels):
                            s = parse_rfc3339(n.get("starts_at"))
                            if s is not None and s < t0 - 2.0:
                                continue
                            notified_at = n["received_at"]
                            break
                except Exception as exc:  # noqa: BLE001
                    errors += 1
                    last_error = f"{type(exc).__name__}: {exc}"
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
            "poll_errors": errors,
        }
        rule = self._plan_rule()
        if rule is not None:
            measured["rule_for_s"] = rule.for_.value
        if fired_at is None:
            why = f"alert {name} did not fire within {format_duration(within)}"
            if stale:
                why += " (it was already firing before the fault: a leftover, not this fault's)"
            elif rule is None:
                why += " (the plan has no rule of that name)"
            if errors and last_error:
                why += f"; last error asking Alertmanager: {last_error}"
            return CheckResult(self.kind, False, why, measured)
        if notified_at is None:
            return CheckResult(
                self.kind, False,
                f"alert {name} fired after {format_duration(fired_at - t0)} but no notification reached "
                f"receiver '{receiver}' within {format_duration(within)}", measured)
        ok = fired_at - t0 <= within and notified_at - t0 <= within
        return CheckResult(
            self.kind, ok,
            f"alert {name} fired after {format_duration(fired_at - t0)}, notification to '{receiver}' "
            f"after {format_duration(notified_at - t0)} (within {format_duration(within)})",
            measured)


class LabAlertSilent(Check):
    kind = "alert-silent"

    def run(self, clock: RunClock) -> CheckResult:
        cfg = self.target.cfg
        name = self.params["alert"]
        try:
            grace = load_lab_plan(cfg).alert(name).for_.value + 5.0
        except Exception:  # noqa: BLE001
            grace = 10.0
        t0 = clock.injected_at or time.time()
        seen_at = None
        polls = 0
        ended_at = None
        while True:
            now = time.time()
            polls += 1
            try:
                if active_alerts(cfg, name):
                    seen_at = now
                    break
            except Exception:  # noqa: BLE001 - Alertmanager briefly unreachable
                pass
            if clock.reverted.is_set() and clock.reverted_at is not None and now >= clock.reverted_at + grace:
                ended_at = now
                break
            if clock.stop.is_set():
                ended_at = now
                break
            if not clock.wait_until(now + POLL):
                ended_at = time.time()
                break
        measured = {"alert": name, "polls": polls, "grace_after_revert_s": grace}
        if seen_at is not None:
            measured["fired_after_s"] = round(seen_at - t0, 3)
            return CheckResult(self.kind, False,
                               f"alert {name} fired {format_duration(seen_at - t0)} after the injection "
                               f"(it should have stayed silent)", measured)
        measured["watched_s"] = round((ended_at or time.time()) - t0, 3)
        return CheckResult(self.kind, True,
                           f"alert {name} stayed silent for {format_duration(measured['watched_s'])}", measured)


CHECKS = [LabAlertFires, LabAlertSilent]

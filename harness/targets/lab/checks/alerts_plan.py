"""alert-resolves, alert-inhibited and notification-count on the lab (Alertmanager API v2
and the recording webhook), judged against the lab's plan. Each fails closed: a source
that could not be read makes a negative or a positive conclusion "could not verify".

alert-resolves     alert, within, receiver. The alert must have fired during the run;
                   after the revert, Alertmanager must stop listing it AND its receiver
                   must get the ``resolved`` notification, both within ``within``.
alert-inhibited    alert, by, within. The alert must reach Alertmanager within ``within``
                   and be held back (``inhibitedBy``) by the plan's inhibition rule while
                   the inhibiting alert fires; no firing notification of it may reach its
                   receiver while the inhibiting alert is active.
notification-count alert, receiver, max (1). Firing notifications of each alert series at
                   its receiver, from the injection until it resolved after the revert:
                   more than ``max`` within the plan's repeat interval is a duplicate page.
"""
from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

from harness.checks.base import CheckResult, RunClock, unverified
from harness.lab.alerting import active_alerts, notifications
from harness.quantities import format_duration, parse_duration
from harness.targets import registry
from harness.targets.lab.checks.alerts import _PlanAlertCheck, _Reads, parse_rfc3339

POLL = 0.5
#: how long after the inhibiting alert appears Alertmanager may still show the target
#: uninhibited (both arrive in one evaluation; the status is computed per read)
INHIBIT_RACE_S = 1.5


def all_alerts(cfg, alert: str, timeout: float = 1.0) -> list[dict]:
    """Every alert of that name Alertmanager holds: active, inhibited and silenced."""
    q = urllib.parse.urlencode({"active": "true", "silenced": "true", "inhibited": "true",
                                "filter": f'alertname="{alert}"'})
    with urllib.request.urlopen(f"{cfg.alertmanager_url}/api/v2/alerts?{q}", timeout=timeout) as r:
        return json.loads(r.read())


class _Routed(_PlanAlertCheck):
    def receiver(self) -> str | None:
        if self.params.get("receiver"):
            return str(self.params["receiver"])
        rule = self.rule()
        if rule is None or self._plan is None or self._plan.routing is None:
            return None
        return self._plan.routing.receiver_for(rule.severity)

    def problems(self) -> list[str]:
        out = self.plan_problems()
        if out:
            return out
        if self.rule() is None:
            return [self.not_in_plan("its rule (for, severity, receiver) is unknown")]
        if self.receiver() is None:
            return [f"the plan routes no receiver for severity {self.rule().severity!r} "
                    f"(alert {self.params['alert']})"]
        return []


@registry.check("lab")
class LabAlertResolves(_Routed):
    kind = "alert-resolves"

    def run(self, clock: RunClock) -> CheckResult:
        cfg, name = self.target.cfg, self.params["alert"]
        within = parse_duration(self.params["within"])
        receiver = self.receiver()
        t0 = clock.injected_at or time.time()
        am, hook = _Reads("alertmanager /api/v2/alerts"), _Reads("webhook receiver log")
        fired_at = None
        # 1. until the revert: did it fire at all (it must, to resolve)?
        while not clock.reverted.is_set() and not clock.stop.is_set():
            now = time.time()
            if fired_at is None:
                try:
                    if any((parse_rfc3339(a.get("startsAt")) or now) >= t0 - 2.0 for a in active_alerts(cfg, name)):
                        fired_at = now
                    am.success(now)
                except Exception as exc:  # noqa: BLE001 - counted
                    am.failure(now, exc)
            clock.reverted.wait(POLL)
        t_rev = clock.reverted_at or time.time()
        deadline = t_rev + within
        gone_at = resolved_at = None
        still = False
        while True:
            now = time.time()
            if gone_at is None:
                try:
                    active = [a for a in active_alerts(cfg, name)
                              if (parse_rfc3339(a.get("startsAt")) or now) >= t0 - 2.0]
                    am.success(now)
                    if active:
                        fired_at = fired_at or now
                        still = True
                    elif fired_at is not None:  # an alert on a window may fire only after the revert
                        gone_at = now
                except Exception as exc:  # noqa: BLE001 - counted
                    am.failure(now, exc)
            if resolved_at is None:
                try:
                    found = notifications(cfg, since=t0 - 1.0, alert=name, receiver=receiver)
                    hook.success(now)
                    if fired_at is None and any(n.get("status") == "firing" for n in found):
                        fired_at = min(n["received_at"] for n in found if n.get("status") == "firing")
                    res = [n["received_at"] for n in found if n.get("status") == "resolved"]
                    if res:
                        resolved_at = min(res)
                except Exception as exc:  # noqa: BLE001 - counted
                    hook.failure(now, exc)
            if (gone_at is not None and resolved_at is not None) or now >= deadline:
                break
            time.sleep(min(0.25, max(0.0, deadline - now)))
        measured = {
            "alert": name, "receiver": receiver, "within_s": within,
            "fired_after_s": round(fired_at - t0, 3) if fired_at else None,
            "gone_after_revert_s": round(gone_at - t_rev, 3) if gone_at else None,
            "resolved_notified_after_revert_s": round(max(0.0, resolved_at - t_rev), 3) if resolved_at else None,
        }
        evidence = [am.evidence(), hook.evidence(), "watched from the injection to the revert + within"]
        if fired_at is None:
            if am.blind() and hook.blind():
                return unverified(self.kind, f"whether alert {name} fired: neither Alertmanager nor the receiver "
                                             "could be read", measured, evidence)
            return CheckResult(self.kind, False, f"alert {name} never fired during the run, so it cannot have "
                                                 f"resolved (Alertmanager and '{receiver}' show nothing since the "
                                                 "injection)", measured, evidence)
        if gone_at is None:
            if am.blind():
                return unverified(self.kind, f"whether alert {name} resolved: Alertmanager could not be read "
                                             f"({am.evidence()})", measured, evidence)
            return CheckResult(self.kind, False, f"alert {name} was still active {format_duration(within)} after "
                                                 f"the revert (fired {format_duration(fired_at - t0)} after the "
                                                 f"injection{', and still listed' if still else ''})",
                               measured, evidence)
        if resolved_at is None:
            if hook.blind():
                return unverified(self.kind, f"whether '{receiver}' was told {name} resolved: the receiver's log "
                                             f"could not be read ({hook.evidence()})", measured, evidence)
            return CheckResult(self.kind, False, f"alert {name} left Alertmanager "
                                                 f"{format_duration(gone_at - t_rev)} after the revert but receiver "
                                                 f"'{receiver}' got no resolved notification within "
                                                 f"{format_duration(within)}", measured, evidence)
        return CheckResult(self.kind, True, f"alert {name} resolved {format_duration(gone_at - t_rev)} after the "
                                            f"revert, '{receiver}' notified after "
                                            f"{format_duration(max(0.0, resolved_at - t_rev))} (within "
                                            f"{format_duration(within)})", measured, evidence)


@registry.check("lab")
class LabAlertInhibited(_Routed):
    kind = "alert-inhibited"

    def inhibition(self):
        """The plan's inhibition rule that holds this alert back, and the alert it names."""
        if self._plan is None or self.rule() is None:
            return None, None
        rule = self.rule()
        labels = {"alertname": rule.name, "severity": rule.severity, **rule.labels}
        for inh in self._plan.inhibitions:
            if all(labels.get(k) == v for k, v in inh.target_match.items()):
                src = self.params.get("by") or inh.source_match.get("alertname")
                if not self.params.get("by") or inh.source_match.get("alertname") in (None, self.params["by"]):
                    return inh, src
        return None, None

    def problems(self) -> list[str]:
        out = super().problems()
        if out:
            return out
        inh, by = self.inhibition()
        if inh is None:
            return [f"the plan has no inhibition rule that holds back {self.params['alert']}"
                    + (f" when {self.params['by']} fires" if self.params.get("by") else "")
                    + f" (its inhibitions: {', '.join(i.name for i in self._plan.inhibitions) or 'none'})"]
        if not by:
            return [f"inhibition '{inh.name}' names no alertname to watch: give by: <alert>"]
        return []

    def run(self, clock: RunClock) -> CheckResult:
        cfg, name = self.target.cfg, self.params["alert"]
        inh, by = self.inhibition()
        within = parse_duration(self.params["within"])
        receiver = self.receiver()
        grace = self.rule().for_.value + 5.0
        t0 = clock.injected_at or time.time()
        am, hook = _Reads("alertmanager /api/v2/alerts"), _Reads("webhook receiver log")
        seen_at = suppressed_at = by_first = by_last = None
        reads = uninhibited = 0
        uninhibited_at = None
        while True:
            now = time.time()
            try:
                mine = [a for a in all_alerts(cfg, name) if (parse_rfc3339(a.get("startsAt")) or now) >= t0 - 2.0]
                source = [a for a in active_alerts(cfg, by) if (parse_rfc3339(a.get("startsAt")) or now) >= t0 - 2.0]
                am.success(now)
                if source:
                    by_first = by_first or now
                    by_last = now
                for a in mine:
                    seen_at = seen_at or now
                    st = a.get("status") or {}
                    if st.get("inhibitedBy"):
                        suppressed_at = suppressed_at or now
                    elif source and by_first is not None and now - by_first > INHIBIT_RACE_S:
                        uninhibited += 1
                        uninhibited_at = uninhibited_at or now
                if mine and source:
                    reads += 1
            except Exception as exc:  # noqa: BLE001 - counted
                am.failure(now, exc)
            end = max(t0 + within, (clock.reverted_at or now) + grace) if clock.reverted.is_set() else None
            if (end is not None and now >= end) or clock.stop.is_set() or (seen_at is None and now > t0 + within
                                                                             and clock.reverted.is_set()):
                break
            time.sleep(POLL)
        notified = []
        try:
            found = notifications(cfg, since=t0 - 1.0, alert=name, receiver=receiver)
            hook.success(time.time())
            if by_first is not None:
                notified = [n["received_at"] for n in found if n.get("status") == "firing"
                            and by_first - 1.0 <= n["received_at"] <= (by_last or by_first) + 1.0]
        except Exception as exc:  # noqa: BLE001
            hook.failure(time.time(), exc)
        r = lambda t: round(t - t0, 3) if t else None  # noqa: E731
        measured = {"alert": name, "by": by, "inhibition": inh.name, "receiver": receiver, "within_s": within,
                    "fired_after_s": r(seen_at), "inhibited_after_s": r(suppressed_at),
                    "inhibiting_alert_active_s": [r(by_first), r(by_last)], "reads_both_active": reads,
                    "reads_uninhibited": uninhibited, "notified_while_inhibiting_active_after_s": [r(t) for t in notified]}
        evidence = [am.evidence(), hook.evidence(), f"plan inhibition '{inh.name}' ({inh.source})"]
        if am.blind() or hook.blind():
            return unverified(self.kind, f"whether {name} was inhibited by {by}: "
                                         f"{am.evidence() if am.blind() else hook.evidence()}", measured, evidence)
        if seen_at is None:
            return CheckResult(self.kind, False, f"alert {name} did not fire within {format_duration(within)}: "
                                                 "there was nothing to inhibit", measured, evidence)
        if by_first is None:
            return CheckResult(self.kind, False, f"alert {name} fired after {format_duration(seen_at - t0)} but "
                                                 f"the inhibiting alert {by} never fired", measured, evidence)
        if uninhibited or notified or suppressed_at is None:
            parts = [f"alert {name} fired after {format_duration(seen_at - t0)} and was NOT inhibited while {by} "
                     f"was active (from +{by_first - t0:.1f}s): uninhibited in {uninhibited} of {reads} reads"]
            if notified:
                parts.append(f"'{receiver}' was notified at +{notified[0] - t0:.1f}s")
            return CheckResult(self.kind, False, "; ".join(parts), measured, evidence)
        return CheckResult(self.kind, True, f"alert {name} fired after {format_duration(seen_at - t0)} and was "
                                            f"inhibited by {by} (inhibited in every one of {reads} reads while both "
                                            f"were active; '{receiver}' not notified)", measured, evidence)


@registry.check("lab")
class LabNotificationCount(_Routed):
    kind = "notification-count"

    def run(self, clock: RunClock) -> CheckResult:
        cfg, name = self.target.cfg, self.params["alert"]
        most = int(self.params.get("max", 1))
        receiver = self.receiver()
        repeat = self._plan.routing.repeat_interval.value
        t0 = clock.injected_at or time.time()
        am, hook = _Reads("alertmanager /api/v2/alerts"), _Reads("webhook receiver log")
        fired = False
        gone_at = None
        cap = 120.0  # after the revert: an alert still firing then is alert-resolves' verdict
        while True:
            now = time.time()
            try:
                active = [a for a in active_alerts(cfg, name) if (parse_rfc3339(a.get("startsAt")) or now) >= t0 - 2.0]
                am.success(now)
                fired = fired or bool(active)
                if clock.reverted.is_set() and fired and not active:
                    gone_at = now
            except Exception as exc:  # noqa: BLE001
                am.failure(now, exc)
            if gone_at or clock.stop.is_set() or (clock.reverted.is_set() and now > (clock.reverted_at or now) + cap):
                break
            if clock.reverted.is_set() and not fired and now > (clock.reverted_at or now) + 30.0:
                break
            time.sleep(POLL)
        time.sleep(1.0)  # a notification sent as it resolved is in the log a moment later
        try:
            found = notifications(cfg, since=t0 - 1.0, alert=name, receiver=receiver)
            hook.success(time.time())
        except Exception as exc:  # noqa: BLE001
            hook.failure(time.time(), exc)
            found = None
        measured = {"alert": name, "receiver": receiver, "max": most, "repeat_interval_s": repeat}
        evidence = [am.evidence(), hook.evidence()]
        if found is None or hook.blind():
            return unverified(self.kind, f"how often '{receiver}' was notified of {name}: {hook.evidence()}",
                              measured, evidence)
        by_fp: dict[str, list[float]] = {}
        for n in found:
            if n.get("status") == "firing":
                by_fp.setdefault(str(n.get("fingerprint") or n.get("labels")), []).append(n["received_at"])
        worst, gaps = 0, []
        for times in by_fp.values():
            times.sort()
            gaps += [round(b - a, 3) for a, b in zip(times, times[1:])]
            for i, t in enumerate(times):
                worst = max(worst, sum(1 for u in times[i:] if u - t < repeat))
        measured.update({"series": len(by_fp), "firing_notifications": sum(len(v) for v in by_fp.values()),
                         "most_within_repeat_interval": worst, "gaps_s": gaps,
                         "first_after_s": round(min(min(v) for v in by_fp.values()) - t0, 3) if by_fp else None})
        if not by_fp:
            return CheckResult(self.kind, False, f"receiver '{receiver}' got no firing notification of {name} "
                                                 "since the injection: nothing to count (did it fire?)",
                               measured, evidence)
        rep = format_duration(repeat)
        if worst > most:
            return CheckResult(self.kind, False, f"'{receiver}' was notified of {name} {worst} times within the "
                                                 f"plan's repeat interval {rep} (at most {most}); gaps "
                                                 f"{', '.join(f'{g:g}s' for g in gaps)}", measured, evidence)
        return CheckResult(self.kind, True, f"'{receiver}' was notified of {name} {worst} time(s) within the repeat "
                                            f"interval {rep} (at most {most}; {len(by_fp)} series)",
                           measured, evidence)


@registry.check("lab")
class LabAlertSuppressed(_Routed):
    """alert, within, by (maintenance | silence | any; default any), receiver.

    The alert must fire (reach Alertmanager) within ``within`` of the injection, and no
    notification of it may reach any receiver from the injection until the revert plus
    the plan's group-wait + 5 s: a maintenance window (mute time interval) or a silence
    held it back. ``by: silence`` also requires Alertmanager to list it as silenced.
    Alertmanager reports mute time intervals in its API only from 0.28 (``mutedBy``);
    before that a maintenance window is judged by the receivers' log alone, and the
    evidence says so."""

    kind = "alert-suppressed"

    def problems(self) -> list[str]:
        out = super().problems()
        by = self.params.get("by", "any")
        if not out and by not in ("maintenance", "silence", "any"):
            out.append(f"alert-suppressed: by must be maintenance, silence or any (got {by!r})")
        return out

    def run(self, clock: RunClock) -> CheckResult:
        cfg, name = self.target.cfg, self.params["alert"]
        by = self.params.get("by", "any")
        within = parse_duration(self.params["within"])
        rt = self._plan.routing
        grace = rt.group_wait.value + 5.0
        t0 = clock.injected_at or time.time()
        am, hook = _Reads("alertmanager /api/v2/alerts"), _Reads("webhook receiver log")
        seen_at = silenced_at = muted_at = None
        unsuppressed_reads = reads = 0
        leaked: list[dict] = []
        while True:
            now = time.time()
            try:
                mine = [a for a in all_alerts(cfg, name) if (parse_rfc3339(a.get("startsAt")) or now) >= t0 - 2.0]
                am.success(now)
                for a in mine:
                    seen_at = seen_at or now
                    st = a.get("status") or {}
                    reads += 1
                    if st.get("silencedBy"):
                        silenced_at = silenced_at or now
                    if st.get("mutedBy"):
                        muted_at = muted_at or now
                    if st.get("state") != "suppressed":
                        unsuppressed_reads += 1
            except Exception as exc:  # noqa: BLE001 - counted; a blind verdict is "could not verify"
                am.failure(now, exc)
            try:
                found = notifications(cfg, since=t0 - 1.0, alert=name)
                hook.success(now)
                leaked = [n for n in found if (parse_rfc3339(n.get("starts_at")) or now) >= t0 - 2.0]
            except Exception as exc:  # noqa: BLE001 - counted
                hook.failure(now, exc)
            if leaked or clock.stop.is_set():
                break
            if seen_at is None and now > t0 + within:
                break
            if clock.reverted.is_set() and seen_at is not None:
                end = max(seen_at, clock.reverted_at or now) + grace
                if now >= end:
                    break
            time.sleep(POLL)
        r = lambda t: round(t - t0, 3) if t else None  # noqa: E731
        measured = {"alert": name, "by": by, "within_s": within, "fired_after_s": r(seen_at),
                    "silenced_after_s": r(silenced_at), "muted_after_s": r(muted_at), "reads": reads,
                    "reads_not_suppressed": unsuppressed_reads,
                    "leaked": [{"receiver": n.get("receiver"), "status": n.get("status"),
                                "after_s": r(n.get("received_at"))} for n in leaked]}
        evidence = [am.evidence(), hook.evidence(),
                    f"watched until the revert + group-wait {rt.group_wait.text} + 5 s"
                    + (f" ({rt.source})" if rt.source else "")]
        if by != "silence" and muted_at is None:
            evidence.append("Alertmanager did not report a mute (mutedBy is in its API from 0.28): "
                            "the maintenance window is judged by the receivers' log")
        if leaked:
            n = leaked[0]
            return CheckResult(self.kind, False,
                               f"alert {name} was not suppressed: a {n.get('status')} notification reached "
                               f"'{n.get('receiver')}' {format_duration(n['received_at'] - t0)} after the injection "
                               f"(no maintenance window or silence held it back)", measured, evidence)
        if am.blind() or hook.blind():
            return unverified(self.kind, f"whether {name} was suppressed: "
                                         f"{am.evidence() if am.blind() else hook.evidence()}", measured, evidence)
        if seen_at is None:
            return CheckResult(self.kind, False, f"alert {name} did not fire within {format_duration(within)}: "
                                                 "there was nothing to suppress", measured, evidence)
        if by == "silence" and silenced_at is None:
            return CheckResult(self.kind, False,
                               f"alert {name} fired after {format_duration(seen_at - t0)} and no notification got out, "
                               f"but Alertmanager never listed it as silenced (by: silence): something else held it "
                               f"back", measured, evidence)
        how = ("silenced" if silenced_at is not None else "muted by a maintenance window" if muted_at is not None
               else "held back")
        watched = format_duration(time.time() - t0)
        return CheckResult(self.kind, True, f"alert {name} fired after {format_duration(seen_at - t0)} and was {how}: "
                                            f"no notification reached any receiver in {watched} watched",
                           measured, evidence)

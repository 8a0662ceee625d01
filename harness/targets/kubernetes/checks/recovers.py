"""recovers on Kubernetes: the lowest serving count and the time back to desired, from a watch."""
from __future__ import annotations

import time
from typing import Any

from harness.checks.base import Check, CheckResult, RunClock
from harness.errors import InvalidInput
from harness.quantities import format_duration
from harness.targets import registry
from harness.targets.kubernetes.watch import (
    _within,
    _Workload,
    _ServingTracker,
    _time_below,
)


@registry.check("kubernetes")
class K8sRecovers(Check):
    """The workload is back to its desired serving replicas within ``within`` of the
    fault being reverted (``from: revert``, the default) or injected (``from: inject``),
    and never had fewer than ``min-available`` serving pods meanwhile (default 1: the
    service was never down; a single-replica Deployment fails a pod kill)."""

    kind = "recovers"

    def run(self, clock: RunClock) -> CheckResult:
        within = _within(self)
        ref_kind = self.params.get("from") or "revert"
        if ref_kind not in ("inject", "revert"):
            raise InvalidInput("recovers: 'from' is inject or revert")
        min_available = self.params.get("min-available", 1)
        work = _Workload(self)
        tracker = _ServingTracker(self.target, work.namespace, work.selector())
        desired = work.desired()
        # Started after the fault acted (the engine starts checks once the injection has
        # returned)? Then replay from just before it, so a dip of milliseconds still counts.
        mark = None
        if clock.injected_at is not None:
            mark = self.target.mark_at_or_before(clock.injected_at)
        tracker.replayed = tracker.relist(at=mark)
        baseline = tracker.serving()
        if desired is None:
            desired = baseline
        started = time.time()

        def follow_until(event_ok) -> bool:
            while not event_ok():
                if clock.stop.is_set():
                    return False
                tracker.step(0.5 if clock.injected_at is None else 1.0)
            return True

        if not follow_until(lambda: clock.injected_at is not None):
            return self._result(False, "the run stopped before any fault was injected", tracker, desired, None, None, min_available, started)
        if ref_kind == "revert":
            if not follow_until(lambda: clock.reverted.is_set()):
                return self._result(False, "the run stopped before the fault was reverted", tracker, desired, None, None, min_available, started)
            ref = clock.reverted_at or time.time()
        else:
            ref = clock.injected_at
        deadline = ref + within
        recovered_at = None
        while True:
            desired = work.desired() or desired
            if tracker.serving() >= desired and tracker.in_sync():
                recovered_at = time.time()
                break
            if time.time() >= deadline or clock.stop.is_set():
                break
            tracker.step(min(1.0, max(0.1, deadline - time.time())))
        if recovered_at is not None:
            # when it got back to desired (the watch's event time, not when we noticed)
            up, prev = None, None
            for t, n in tracker.history:
                if n >= desired and (prev is None or prev < desired):
                    up = t
                prev = n
            if up is not None:
                recovered_at = max(up, ref)
        minimum = tracker.min_since(clock.injected_at or started)
        return self._result(
            recovered_at is not None, None, tracker, desired, ref, recovered_at, min_available, started,
            ref_kind=ref_kind, within=within, minimum=minimum, clock=clock,
        )

    def _result(self, ok, reason, tracker, desired, ref, recovered_at, min_available, started,
                ref_kind="revert", within=None, minimum=None, clock=None) -> CheckResult:
        injected = clock.injected_at if clock else None
        below = _time_below(tracker.history, desired, injected or started, recovered_at or time.time())
        measured: dict[str, Any] = {
            "desired": desired,
            "serving_min": minimum,
            "serving_now": tracker.serving(),
            "min_available": min_available,
            "seconds_below_desired": round(below, 3),
            "recovered_after": None if recovered_at is None or ref is None else round(max(0.0, recovered_at - ref), 3),
            "from": ref_kind,
            "replayed_from_before_injection": getattr(tracker, "replayed", False),
            "history": [(round(t - (injected or started), 3), n) for t, n in tracker.history[-50:]],
        }
        if reason:
            return CheckResult(self.kind, False, reason, measured)
        floor_ok = minimum is None or min_available is None or minimum >= int(min_available)
        passed = ok and floor_ok
        if not ok:
            summary = (
                f"{tracker.serving()}/{desired} pods serving {format_duration(within)} after the "
                f"fault was {'reverted' if ref_kind == 'revert' else 'injected'} (needed {desired}); "
                f"lowest was {minimum}"
            )
        elif not floor_ok:
            under = _time_below(tracker.history, int(min_available), injected or started, recovered_at or time.time())
            measured["seconds_below_min_available"] = round(under, 3)
            summary = (
                f"recovered to {desired}/{desired} but serving pods fell to {minimum} "
                f"(below min-available {min_available}) for {format_duration(under)}"
            )
        else:
            summary = (
                f"{desired}/{desired} pods serving {format_duration(measured['recovered_after'])} after "
                f"{'revert' if ref_kind == 'revert' else 'injection'} (<= {format_duration(within)}); "
                f"lowest {minimum}, below desired for {format_duration(below)}"
            )
        return CheckResult(self.kind, passed, summary, measured)

"""no-pending-pods on Kubernetes: no pod stays Pending longer than allowed."""
from __future__ import annotations

import time

from harness.checks.base import Check, CheckResult, RunClock
from harness.quantities import format_duration
from harness.targets.kubernetes.target import KubernetesTarget, _selector_string
from harness.targets import registry
from harness.targets.kubernetes.watch import (
    POLL,
    _within,
    _namespace,
    _parse_time,
    _wait_for_injection,
)


@registry.check("kubernetes")
class K8sNoPendingPods(Check):
    """No pod (of the selector, in the namespace) stays Pending longer than ``within``.
    Watched from the injection until ``within`` after the revert."""

    kind = "no-pending-pods"

    def run(self, clock: RunClock) -> CheckResult:
        within = _within(self)
        ns = _namespace(self)
        sel = _selector_string(self.params.get("selector"))
        target: KubernetesTarget = self.target
        first_seen: dict[str, float] = {}
        worst: tuple[str, float] = ("", 0.0)
        seen_pending: set[str] = set()
        started = time.time()
        if not _wait_for_injection(clock):
            return CheckResult(self.kind, False, "the run stopped before any fault was injected", {})
        while True:
            now = time.time()
            current = set()
            for p in target.pods(ns, sel):
                if (p.get("status") or {}).get("phase") != "Pending" or p["metadata"].get("deletionTimestamp"):
                    continue
                key = f"{p['metadata']['namespace']}/{p['metadata']['name']}"
                current.add(key)
                seen_pending.add(key)
                created = _parse_time(p["metadata"].get("creationTimestamp")) or now
                since = first_seen.setdefault(key, max(created, min(started, now)))
                age = now - since
                if age > worst[1]:
                    worst = (key, age)
                if age > within:
                    return CheckResult(
                        self.kind, False,
                        f"{key} has been Pending for {format_duration(age)} (> {format_duration(within)})",
                        {"pod": key, "pending_seconds": round(age, 3), "pending_now": len(current),
                         "pods_seen_pending": len(seen_pending)},
                    )
            for key in list(first_seen):
                if key not in current:
                    first_seen.pop(key)
            end = (clock.reverted_at + within) if clock.reverted.is_set() and clock.reverted_at else None
            if (end is not None and now >= end) or clock.stop.is_set():
                break
            clock.stop.wait(POLL * 2)
        measured = {
            "longest_pending_seconds": round(worst[1], 3),
            "longest_pending_pod": worst[0] or None,
            "pods_seen_pending": len(seen_pending),
        }
        if worst[0]:
            summary = f"no pod Pending longer than {format_duration(within)} (longest {worst[0]}: {format_duration(worst[1])})"
        else:
            summary = "no pod was Pending during the run"
        return CheckResult(self.kind, True, summary, measured)

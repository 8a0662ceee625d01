"""pods-per-zone on Kubernetes: after a zone loss, pods spread over the remaining zones."""
from __future__ import annotations

import time
from typing import Any

from harness.checks.base import Check, CheckResult, RunClock
from harness.quantities import format_duration
from harness.targets.kubernetes.target import KubernetesTarget, node_is_ready, pod_is_serving
from harness.targets import registry
from harness.targets.kubernetes.watch import (
    POLL,
    _within,
    _wait_for_injection,
    _Workload,
)


@registry.check("kubernetes")
class K8sPodsPerZone(Check):
    """After a zone is lost (its nodes cordoned or NotReady), the workload's serving pods
    are all in the remaining zones: at least ``min-per-zone`` (default 1) in each of them,
    and (for a Deployment) as many as it desires, within ``within`` of the injection."""

    kind = "pods-per-zone"

    def run(self, clock: RunClock) -> CheckResult:
        within = _within(self)
        min_per_zone = int(self.params.get("min-per-zone", 1))
        work = _Workload(self)
        target: KubernetesTarget = self.target
        selector = work.selector()
        if not _wait_for_injection(clock):
            return CheckResult(self.kind, False, "the run stopped before any fault was injected", {})
        deadline = clock.injected_at + within
        last: dict[str, Any] = {}
        during: dict[str, Any] = {}  # the last look while a zone was lost
        while True:
            nodes = target.nodes()
            zone_of = {n["metadata"]["name"]: target.zone_of(n) for n in nodes}
            ready = {n["metadata"]["name"] for n in nodes if node_is_ready(n)}
            usable = {
                n["metadata"]["name"] for n in nodes
                if n["metadata"]["name"] in ready and not (n.get("spec") or {}).get("unschedulable")
            }
            zones = sorted({z for z in zone_of.values() if z})
            healthy = sorted({zone_of[n] for n in usable if zone_of.get(n)})
            lost = [z for z in zones if z not in healthy]
            pods = target.pods(work.namespace, selector)
            per_zone = {z: 0 for z in zones}
            in_lost = 0
            pending = 0
            for p in pods:
                node = (p.get("spec") or {}).get("nodeName")
                if (p.get("status") or {}).get("phase") == "Pending":
                    pending += 1
                if not pod_is_serving(p, ready):
                    continue
                z = zone_of.get(node)
                if z in per_zone:
                    per_zone[z] += 1
                if z in lost or node not in usable:
                    in_lost += 1
            desired = work.desired()
            in_healthy = sum(per_zone[z] for z in healthy)
            now = time.time()
            last = {
                "lost_zones": lost,
                "per_zone": per_zone,
                "pods_in_lost_zones": in_lost,
                "pending": pending,
                "desired": desired,
                "min_per_zone": min_per_zone,
                "seconds_since_injection": round(now - clock.injected_at, 3),
            }
            if lost:
                during = last
            ok = (
                bool(lost)
                and in_lost == 0
                and all(per_zone[z] >= min_per_zone for z in healthy)
                and (desired is None or in_healthy >= desired)
            )
            if ok:
                spread = ", ".join(f"{z}={per_zone[z]}" for z in healthy)
                return CheckResult(
                    self.kind, True,
                    f"{work.label()}: pods spread over the remaining zones ({spread}) "
                    f"{format_duration(now - clock.injected_at)} after losing {', '.join(lost)} "
                    f"(<= {format_duration(within)})",
                    last,
                )
            if now >= deadline or clock.stop.is_set():
                break
            if clock.reverted.is_set() and not lost:
                break  # the zone is back: the spread during its loss can no longer be seen
            clock.stop.wait(POLL * 2)
        last = during or last
        if not last.get("lost_zones"):
            why = "no zone was lost (every zone kept a Ready, schedulable node)"
        else:
            short = [z for z in (set(last["per_zone"]) - set(last["lost_zones"])) if last["per_zone"][z] < min_per_zone]
            why = (
                f"after losing {', '.join(last['lost_zones'])}: per zone {last['per_zone']}, "
                f"{last['pods_in_lost_zones']} still in the lost zone(s), {last['pending']} Pending"
                + (f"; zones below {min_per_zone}: {', '.join(sorted(short))}" if short else "")
            )
        return CheckResult(self.kind, False, f"{work.label()}: not spread within {format_duration(within)}: {why}", last)

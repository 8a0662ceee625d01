"""Checks of the Kubernetes target: recovery, spread over zones, pending pods, scaling.

A pod counts as *serving* when it is Ready, not terminating, and its node is Ready
(KWOK's pod stages cannot see the node, and on a real cluster a pod on a NotReady
node does not serve either). Every result carries the numbers that decided it.
"""
from __future__ import annotations

import calendar
import threading
import time
from typing import Any

from harness.checks.base import Check, CheckResult, RunClock
from harness.checks.replicas import ReplicaJudge
from harness.errors import InvalidInput
from harness.quantities import format_duration, parse_duration
from harness.targets.kubernetes import (
    KubernetesTarget,
    _selector_string,
    label_selector_from_spec,
    node_is_ready,
    pod_is_serving,
)

POLL = 0.25


def _within(check: Check) -> float:
    try:
        return parse_duration(check.params["within"])
    except KeyError:
        raise InvalidInput(f"{check.kind} needs 'within'") from None
    except ValueError as exc:
        raise InvalidInput(f"{check.kind}: within: {exc}") from None


def _namespace(check: Check) -> str:
    return check.params.get("namespace") or check.target.namespace


def _parse_time(ts: str | None) -> float | None:
    if not ts:
        return None
    return float(calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")))


def _wait_for_injection(clock: RunClock) -> bool:
    while clock.injected_at is None:
        if clock.stop.wait(0.05):
            return False
    return True


def _wait_for_revert(clock: RunClock) -> bool:
    while not clock.reverted.is_set():
        if clock.stop.wait(0.1):
            return False
    if clock.reverted_at is None:
        clock.reverted_at = time.time()
    return True


class _Workload:
    """What a check watches: a Deployment (desired replicas from its spec) or bare pods."""

    def __init__(self, check: Check):
        self.target: KubernetesTarget = check.target
        self.namespace = _namespace(check)
        self.deployment = check.params.get("deployment") or check.params.get("app")
        sel = check.params.get("selector")
        if not self.deployment and not sel:
            raise InvalidInput(f"{check.kind}: name a 'deployment' or give a pod 'selector'")
        self._selector = _selector_string(sel) if sel else None

    def selector(self) -> str:
        if self._selector:
            return self._selector
        dep = self.target.list_json(
            self.target.apps.read_namespaced_deployment, self.deployment, self.namespace
        )
        self._selector = label_selector_from_spec((dep.get("spec") or {}).get("selector"))
        return self._selector

    def desired(self) -> int | None:
        if not self.deployment:
            return None
        dep = self.target.list_json(
            self.target.apps.read_namespaced_deployment, self.deployment, self.namespace
        )
        return int((dep.get("spec") or {}).get("replicas", 1))

    def label(self) -> str:
        if self.deployment:
            return f"deployment {self.namespace}/{self.deployment}"
        return f"pods {self._selector} in {self.namespace}"


class _ServingTracker:
    """Follows the workload's pods through a watch (every change, in order), so that a
    dip lasting milliseconds (a pod killed and replaced at once) is still seen."""

    def __init__(self, target: KubernetesTarget, namespace: str, selector: str):
        self.target, self.namespace, self.selector = target, namespace, selector
        self.pods: dict[str, dict] = {}
        self.ready_nodes: set[str] = set()
        self.history: list[tuple[float, int]] = []  # (epoch, serving) at every change
        self._rv: str | None = None
        self._nodes_read_at = 0.0
        self.lock = threading.Lock()

    def serving(self) -> int:
        return sum(1 for p in self.pods.values() if pod_is_serving(p, self.ready_nodes))

    def _record(self) -> None:
        n = self.serving()
        if not self.history or self.history[-1][1] != n:
            self.history.append((time.time(), n))

    def _refresh_nodes(self) -> None:
        self.ready_nodes = {n["metadata"]["name"] for n in self.target.nodes() if node_is_ready(n)}
        self._nodes_read_at = time.monotonic()

    def relist(self, at: str | None = None) -> bool:
        """List the pods (now, or exactly as they were at resourceVersion ``at``). Returns
        False when ``at`` is too old to be read (then it lists the present)."""
        from kubernetes.client.rest import ApiException

        self._refresh_nodes()
        data = None
        if at is not None:
            try:
                data = self.target.list_json(
                    self.target.core.list_namespaced_pod, self.namespace, label_selector=self.selector,
                    resource_version=at, resource_version_match="Exact",
                )
            except ApiException as exc:
                if exc.status not in (410, 400, 504):
                    raise
        if data is None:
            data = self.target.list_json(
                self.target.core.list_namespaced_pod, self.namespace, label_selector=self.selector
            )
            at = None
        self.pods = {p["metadata"]["uid"]: p for p in data.get("items") or []}
        self._rv = data["metadata"]["resourceVersion"]
        self._record()
        return at is not None

    def step(self, seconds: float = 1.0) -> None:
        """Consume watch events for up to ``seconds`` (and refresh node readiness)."""
        from kubernetes import watch
        from kubernetes.client.rest import ApiException

        if self._rv is None:
            self.relist()
        if time.monotonic() - self._nodes_read_at >= 1.0:
            self._refresh_nodes()
            self._record()
        w = watch.Watch()
        try:
            for ev in w.stream(
                self.target.core.list_namespaced_pod,
                self.namespace,
                label_selector=self.selector,
                resource_version=self._rv,
                timeout_seconds=max(1, int(seconds)),
                _request_timeout=seconds + 5,
            ):
                obj = ev["raw_object"]
                if ev["type"] == "ERROR":
                    if obj.get("code") == 410:  # too old: start over
                        self._rv = None
                        return
                    continue
                meta = obj.get("metadata") or {}
                self._rv = meta.get("resourceVersion", self._rv)
                if ev["type"] == "BOOKMARK":
                    continue
                if ev["type"] == "DELETED":
                    self.pods.pop(meta["uid"], None)
                else:
                    self.pods[meta["uid"]] = obj
                self._record()
        except ApiException as exc:
            if exc.status == 410:
                self._rv = None
                return
            raise
        finally:
            w.stop()

    def in_sync(self) -> bool:
        """True when a fresh list shows the same pods and readiness as the watch has."""
        data = self.target.list_json(
            self.target.core.list_namespaced_pod, self.namespace, label_selector=self.selector
        )
        fresh = {p["metadata"]["uid"]: pod_is_serving(p, self.ready_nodes) for p in data.get("items") or []}
        mine = {u: pod_is_serving(p, self.ready_nodes) for u, p in self.pods.items()}
        return fresh == mine

    def min_since(self, since: float) -> int | None:
        values = [n for t, n in self.history if t >= since]
        before = [n for t, n in self.history if t < since]
        if before:
            values.append(before[-1])
        return min(values) if values else None


class Recovers(Check):
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


def _time_below(history: list[tuple[float, int]], desired: int, start: float, end: float) -> float:
    total, prev_t, prev_n = 0.0, None, None
    for t, n in history:
        if prev_t is not None and prev_n is not None and prev_n < desired:
            a, b = max(prev_t, start), min(t, end)
            if b > a:
                total += b - a
        prev_t, prev_n = t, n
    if prev_t is not None and prev_n is not None and prev_n < desired:
        a = max(prev_t, start)
        if end > a:
            total += end - a
    return total


class PodsPerZone(Check):
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


class NoPendingPods(Check):
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


class Replicas(Check):
    """Autoscaling as the plan says (the same parameters as on the lab): desired and
    current replicas reach ``at-least`` within ``within`` of the injection (scale out),
    desired never exceeds ``at-most`` nor drops under ``never-below`` while watched, and
    after the revert both settle ``back-to`` N within ``within`` (scale in). Numbers
    come from the autoscaling/v2 HPA status (``hpa``) or from a Deployment
    (``deployment``/``app``: spec.replicas and ready replicas). Watches until the fault
    is reverted (and settled, with back-to)."""

    kind = "replicas"

    def _read(self) -> dict[str, Any]:
        target: KubernetesTarget = self.target
        ns = _namespace(self)
        hpa = self.params.get("hpa")
        if hpa:
            obj = target.list_json(target.autoscaling.read_namespaced_horizontal_pod_autoscaler, hpa, ns)
            spec, status = obj.get("spec") or {}, obj.get("status") or {}
            desired, current = status.get("desiredReplicas"), status.get("currentReplicas")
            if not desired and current:
                desired = None  # the HPA has not computed a recommendation yet
            return {"desired": desired, "current": current,
                    "min": spec.get("minReplicas", 1), "max": spec.get("maxReplicas")}
        name = self.params.get("deployment") or self.params.get("app")
        obj = target.list_json(target.apps.read_namespaced_deployment, name, ns)
        return {
            "desired": (obj.get("spec") or {}).get("replicas", 1),
            "current": (obj.get("status") or {}).get("readyReplicas", 0),
            "min": None,
            "max": None,
        }

    def run(self, clock: RunClock) -> CheckResult:
        p = self.params
        within = _within(self)
        if not (p.get("hpa") or p.get("deployment") or p.get("app")):
            raise InvalidInput("replicas: name an 'hpa' or a 'deployment'")
        what = f"hpa {p['hpa']}" if p.get("hpa") else f"deployment {p.get('deployment') or p.get('app')}"
        if not _wait_for_injection(clock):
            return CheckResult(self.kind, False, "the run stopped before any fault was injected", {})
        judge = ReplicaJudge(self.kind, what, p, within, clock.injected_at, cap_name="maxReplicas")
        sample: dict[str, Any] = {"desired": None, "current": None, "min": None, "max": None}
        while True:
            now = time.time()
            try:
                sample = self._read()
            except Exception as exc:  # noqa: BLE001 - a missed sample is not a verdict
                sample = {**sample, "error": str(exc)}
            judge.observe(now, sample, clock)
            if judge.done(now, clock):
                break
            clock.stop.wait(POLL * 2)
        return judge.result()


CHECKS: dict[str, type[Check]] = {cls.kind: cls for cls in (Recovers, PodsPerZone, NoPendingPods, Replicas)}
KubernetesTarget.checks = dict(CHECKS)

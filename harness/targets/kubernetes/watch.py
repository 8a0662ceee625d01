"""What the Kubernetes checks share: waiting on the run's clock, workloads, serving pods over time.

A pod counts as *serving* when it is Ready, not terminating, and its node is Ready
(KWOK's pod stages cannot see the node, and on a real cluster a pod on a NotReady
node does not serve either). Every result carries the numbers that decided it.
"""
from __future__ import annotations

import calendar
import threading
import time

from harness.checks.base import Check, RunClock
from harness.errors import InvalidInput
from harness.quantities import parse_duration
from harness.targets.kubernetes.target import (
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

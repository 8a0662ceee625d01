"""Faults of the Kubernetes target.

Through chaostoolkit-kubernetes where it has the action (pod termination, node
cordon/uncordon) and the kubernetes client otherwise (PDB-aware eviction, KWOK's
node-not-ready label, KWOK's simulated CPU usage). Never kubectl subprocesses.

Why the drain is ours and not ``chaosk8s.node.actions.drain_nodes``: that function
gives up on the first eviction a PodDisruptionBudget refuses (HTTP 429) where
``kubectl drain`` retries until its timeout, and it waits for each node's pods one by
one with 10 s sleeps, which makes a zone of 100 nodes take many minutes. Here
evictions run concurrently, refused ones are retried until the timeout, and a drain
that cannot finish is reported with the budget's own message.

Every fault keeps in its journaled state what it needs to undo itself from a fresh
process: the nodes it cordoned (and whether they were cordoned before), the labels
it set (and their previous values), the annotations it changed (previous values are
also kept on the pods themselves).
"""
from __future__ import annotations

import json
import logging
import math
import random
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from harness.errors import ExperimentFailed, FaultError, InvalidInput
from harness.faults.base import Fault, State
from harness.quantities import parse_duration
from harness.targets.kubernetes import (
    KubernetesTarget,
    _selector_string,
    node_is_ready,
    node_is_simulated,
    pod_is_terminating,
)

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

NOT_READY_LABEL = "node-not-ready.stage.kwok.x-k8s.io"
USAGE_CPU_ANNOTATION = "kwok.x-k8s.io/usage-cpu"
STRESS_MARK = "resilience-harness/cpu-stress"
STRESS_PREVIOUS = "resilience-harness/usage-cpu-before"
DEFAULT_DRAIN_TIMEOUT = 120.0
EVICTION_WORKERS = 16


class DrainBlocked(ExperimentFailed):
    """Nodes could not be drained within the timeout (PodDisruptionBudgets refused
    evictions, or pods would not go). The system did not allow the maintenance the
    hypothesis assumes; the nodes stay cordoned until the fault is reverted."""

    def __init__(self, message: str, measured: dict[str, Any]):
        super().__init__(message)
        self.measured = measured


def _api_error(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    body = getattr(exc, "body", None)
    message = None
    if body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = str(body)[:300]
    if status is not None:
        return f"HTTP {status} {getattr(exc, 'reason', '')}: {message or ''}".strip()
    return str(exc)


def _call_chaosk8s(target: KubernetesTarget, what: str, func: Callable, **kwargs):
    """Run a chaostoolkit-kubernetes action against ``target``; errors become FaultError."""
    from chaoslib.exceptions import ActivityFailed
    from kubernetes.client.rest import ApiException

    with target.chaosk8s() as secrets:
        try:
            return func(secrets=secrets, **kwargs)
        except ActivityFailed as exc:
            raise FaultError(f"{what} failed: {exc}") from None
        except ApiException as exc:
            raise FaultError(f"{what} failed: {_api_error(exc)}") from None


def _namespace(fault: Fault) -> str:
    return fault.params.get("namespace") or fault.target.namespace


def _selector(fault: Fault, key: str = "selector") -> str:
    sel = fault.params.get(key)
    if sel is not None and not isinstance(sel, (dict, str)):
        raise InvalidInput(f"{fault.kind}: '{key}' must map label names to values, got {sel!r}")
    return _selector_string(sel)


def _timeout(fault: Fault, default: float = DEFAULT_DRAIN_TIMEOUT) -> float:
    raw = fault.params.get("timeout")
    if raw is None:
        return default
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise InvalidInput(f"{fault.kind}: timeout: {exc}") from None


def _pick(items: list, count: int | None) -> list:
    if count is None or count >= len(items):
        return list(items)
    return random.sample(items, count)


# =============================================================================================
# nodes: selection, cordon, drain
# =============================================================================================
def _select_nodes(fault: Fault) -> list[dict]:
    target: KubernetesTarget = fault.target
    name = fault.params.get("node")
    if name:
        nodes = [n for n in target.nodes() if n["metadata"]["name"] == name]
        if not nodes:
            raise FaultError(f"{fault.kind}: there is no node named '{name}'; nothing was changed")
        return nodes
    sel = _selector(fault)
    nodes = target.nodes(sel)
    if not nodes:
        raise FaultError(
            f"{fault.kind}: no node matches '{sel or '(all nodes)'}'; nothing was changed"
        )
    count = fault.params.get("count")
    nodes.sort(key=lambda n: n["metadata"]["name"])
    return _pick(nodes, count)


def _pod_key(pod: dict) -> str:
    return f"{pod['metadata'].get('namespace', '')}/{pod['metadata']['name']}"


def _controller_of(pod: dict) -> dict | None:
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def _is_mirror(pod: dict) -> bool:
    return "kubernetes.io/config.mirror" in (pod["metadata"].get("annotations") or {})


def _is_daemonset_pod(pod: dict) -> bool:
    ref = _controller_of(pod)
    return bool(ref and ref.get("kind") == "DaemonSet")


def _drain_candidate(pod: dict, namespace: str | None) -> bool:
    """Pods a drain evicts (as ``kubectl drain --ignore-daemonsets``)."""
    if namespace and pod["metadata"].get("namespace") != namespace:
        return False
    return not (_is_mirror(pod) or _is_daemonset_pod(pod))


def _unmanaged_pods(target: KubernetesTarget, node_names: list[str], namespace: str | None) -> tuple[list[str], int]:
    """Pods on the nodes that no controller would recreate (a drain would lose them)."""
    unmanaged: list[str] = []
    total = 0
    with ThreadPoolExecutor(EVICTION_WORKERS) as pool:
        for pods in pool.map(target.pods_on_node, node_names):
            for pod in pods:
                if not _drain_candidate(pod, namespace):
                    continue
                total += 1
                phase = (pod.get("status") or {}).get("phase")
                if _controller_of(pod) is None and phase not in ("Succeeded", "Failed"):
                    unmanaged.append(_pod_key(pod))
    return unmanaged, total


def _node_states(nodes: list[dict]) -> list[dict[str, Any]]:
    return [
        {
            "name": n["metadata"]["name"],
            "was_unschedulable": bool((n.get("spec") or {}).get("unschedulable")),
        }
        for n in nodes
    ]


def cordon_nodes(target: KubernetesTarget, names: list[str], selector: str | None = None) -> None:
    """Cordon the nodes through chaostoolkit-kubernetes: in one call by label selector
    when it selects exactly these nodes (a zone), else node by node."""
    from chaosk8s.node.actions import cordon_node

    if selector and sorted(n["metadata"]["name"] for n in target.nodes(selector)) == sorted(names):
        _call_chaosk8s(target, f"cordoning the nodes {selector}", cordon_node, label_selector=selector)
        return
    for name in names:
        _call_chaosk8s(target, f"cordoning node {name}", cordon_node, name=name)


def uncordon_nodes(target: KubernetesTarget, names: list[str], selector: str | None = None) -> list[str]:
    """Uncordon those of the nodes that still exist and are cordoned (by label selector in
    one call when it selects exactly these nodes). Returns the nodes uncordoned."""
    from chaosk8s.node.actions import uncordon_node

    if not names:
        return []
    current = {n["metadata"]["name"]: n for n in target.nodes()}
    todo = [
        name for name in names
        if name in current and (current[name].get("spec") or {}).get("unschedulable")
    ]
    if not todo:
        return []  # gone, or already schedulable: nothing to undo
    if selector and sorted(todo) == sorted(names) and sorted(
        n["metadata"]["name"] for n in target.nodes(selector)
    ) == sorted(names):
        _call_chaosk8s(target, f"uncordoning the nodes {selector}", uncordon_node, label_selector=selector)
        return todo
    for name in todo:
        _call_chaosk8s(target, f"uncordoning node {name}", uncordon_node, name=name)
    return todo


@dataclass
class DrainReport:
    nodes: int
    evicted: int = 0
    retried_429: int = 0
    blocked: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    evictions_accepted_at: float = 0.0  # seconds from the drain's start to its last accepted eviction
    polls: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes,
            "evicted": self.evicted,
            "evictions_refused_429": self.retried_429,
            "blocked": dict(self.blocked),
            "seconds": round(self.seconds, 3),
            "evictions_accepted_after": round(self.evictions_accepted_at, 3),
            "polls": self.polls,
        }


def drain_nodes(
    target: KubernetesTarget,
    names: list[str],
    *,
    timeout: float = DEFAULT_DRAIN_TIMEOUT,
    namespace: str | None = None,
    poll: float = 0.25,
    retry_refused_after: float = 1.0,
    stop: threading.Event | None = None,
    what: str = "drain",
) -> DrainReport:
    """Evict every evictable pod from the (already cordoned) nodes and wait until the
    pods are gone, honouring PodDisruptionBudgets through the Eviction API.

    Refused evictions (429) are retried every ``retry_refused_after`` seconds until
    ``timeout``; then :class:`DrainBlocked` says which pods and why. Unmanaged pods are
    refused by the fault's ``prepare`` (as ``kubectl drain`` without ``--force``).
    """
    from kubernetes.client.rest import ApiException

    core = target.core
    started = time.monotonic()
    deadline = started + timeout
    report = DrainReport(nodes=len(names))
    remaining_nodes = set(names)
    refused_at: dict[str, float] = {}  # pod uid -> when its eviction was last refused
    requested: set[str] = set()  # pod uids whose eviction was accepted

    def evict(pod: dict) -> tuple[dict, int, str]:
        meta = pod["metadata"]
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        }
        try:
            resp = core.create_namespaced_pod_eviction(
                meta["name"], meta["namespace"], body, _preload_content=False,
                _request_timeout=target.request_timeout,
            )
            resp.data  # read it all: the connection goes back to the pool (no new TLS handshake)
            resp.release_conn()
            return pod, 201, ""
        except ApiException as exc:
            return pod, exc.status or 0, _api_error(exc)

    with ThreadPoolExecutor(EVICTION_WORKERS) as pool:
        while True:
            if stop is not None and stop.is_set():
                raise FaultError(f"{what} interrupted; nodes stay cordoned until revert")
            now = time.monotonic()
            report.polls += 1
            todo: list[dict] = []
            listed = list(pool.map(lambda n: (n, target.pods_on_node(n)), sorted(remaining_nodes)))
            for node, pods in listed:
                live = [p for p in pods if _drain_candidate(p, namespace)]
                live = [
                    p for p in live
                    if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                    or not pod_is_terminating(p)
                ]
                if not live:
                    remaining_nodes.discard(node)
                    continue
                for pod in live:
                    uid = pod["metadata"]["uid"]
                    if pod_is_terminating(pod) or uid in requested:
                        continue  # on its way out: wait
                    if now - refused_at.get(uid, -1e9) < retry_refused_after:
                        continue
                    todo.append(pod)
            if not remaining_nodes:
                break
            for pod, status, message in pool.map(evict, todo):
                uid, key = pod["metadata"]["uid"], _pod_key(pod)
                if status in (200, 201):
                    requested.add(uid)
                    report.evicted += 1
                    report.evictions_accepted_at = time.monotonic() - started
                    report.blocked.pop(key, None)
                elif status == 404:
                    requested.add(uid)
                    report.blocked.pop(key, None)
                elif status == 403 and "being terminated" in message:
                    # its namespace is being deleted: the pod goes anyway; wait for it
                    requested.add(uid)
                    report.blocked.pop(key, None)
                elif status == 429:
                    refused_at[uid] = time.monotonic()
                    report.retried_429 += 1
                    report.blocked[key] = message
                else:
                    raise FaultError(f"{what}: evicting {key} failed: {message}")
            if time.monotonic() >= deadline:
                report.seconds = time.monotonic() - started
                if report.blocked:
                    detail = "; ".join(f"{k}: {v}" for k, v in sorted(report.blocked.items())[:5])
                    more = "" if len(report.blocked) <= 5 else f" (and {len(report.blocked) - 5} more)"
                    msg = (
                        f"{what} could not evict {len(report.blocked)} pod(s) within "
                        f"{timeout:g}s because a PodDisruptionBudget refused it: {detail}{more}"
                    )
                else:
                    msg = (
                        f"{what}: pods on {', '.join(sorted(remaining_nodes)[:5])} were still "
                        f"terminating after {timeout:g}s"
                    )
                raise DrainBlocked(msg, report.as_dict())
            time.sleep(poll)
    report.seconds = time.monotonic() - started
    return report


# =============================================================================================
# the faults
# =============================================================================================
class PodKill(Fault):
    """Delete pods chosen by label (count or percent), via chaosk8s ``terminate_pods``."""

    kind = "pod-kill"

    def prepare(self) -> State:
        target: KubernetesTarget = self.target
        ns = _namespace(self)
        sel = _selector(self)
        if not sel:
            raise InvalidInput("pod-kill needs a non-empty 'selector' (e.g. {app: api})")
        candidates = [
            p for p in target.pods(ns, sel)
            if not pod_is_terminating(p)
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        if not candidates:
            raise FaultError(
                f"pod-kill: no running pod matches {sel} in namespace {ns}; nothing was killed"
            )
        count, percent = self.params.get("count"), self.params.get("percent")
        if count is not None and percent is not None:
            raise InvalidInput("pod-kill: give 'count' or 'percent', not both")
        if percent is not None:
            n = max(1, math.ceil(float(percent) * len(candidates) / 100.0))
        else:
            n = int(count or 1)
        victims = _pick(sorted(candidates, key=lambda p: p["metadata"]["name"]), n)
        return {
            "namespace": ns,
            "selector": sel,
            "grace_period": self.params.get("grace-period"),
            "matching": len(candidates),
            "victims": [
                {
                    "name": p["metadata"]["name"],
                    "uid": p["metadata"]["uid"],
                    "node": (p.get("spec") or {}).get("nodeName"),
                }
                for p in victims
            ],
        }

    def inject(self, state: State) -> None:
        from chaosk8s.pod.actions import terminate_pods

        self.target.mark_before_change()
        names = [v["name"] for v in state["victims"]]
        pattern = "^(?:" + "|".join(re.escape(n) for n in names) + ")$"
        gp = state.get("grace_period")
        deleted = _call_chaosk8s(
            self.target,
            f"pod-kill of {', '.join(names)}",
            terminate_pods,
            label_selector=state["selector"],
            name_pattern=pattern,
            all=True,
            grace_period=-1 if gp is None else int(gp),
            ns=state["namespace"],
        )
        missing = set(names) - set(deleted or [])
        if missing:
            log.info("pod-kill: %s already gone before the kill", ", ".join(sorted(missing)))

    def revert(self, state: State) -> None:
        """Nothing to undo: the pods' controllers recreate them (that is the test)."""

    def describe(self) -> str:
        return super().describe()


class _CordonDrainMixin:
    """Shared by node-drain and zone-loss (mode drain)."""

    def _prepare_drain(self: Fault, nodes: list[dict], namespace: str | None) -> State:
        names = [n["metadata"]["name"] for n in nodes]
        unmanaged, total = _unmanaged_pods(self.target, names, namespace)
        if unmanaged:
            shown = ", ".join(unmanaged[:10]) + (" ..." if len(unmanaged) > 10 else "")
            raise FaultError(
                f"{self.kind}: {len(unmanaged)} pod(s) on {', '.join(names[:5])} have no "
                f"controller and would be lost by a drain: {shown}. Delete or move them "
                "first; nothing was changed."
            )
        return {
            "nodes": _node_states(nodes),
            "namespace": namespace,
            "timeout": _timeout(self),
            "pods_to_evict": total,
        }

    def _inject_drain(self: Fault, state: State) -> None:
        self.target.mark_before_change()
        names = [n["name"] for n in state["nodes"]]
        cordon_nodes(self.target, names, state.get("selector"))
        report = drain_nodes(
            self.target, names, timeout=float(state["timeout"]),
            namespace=state.get("namespace"), what=self.kind,
        )
        self.last_report = report.as_dict()
        log.info("%s: %s", self.kind, self.last_report)

    def _revert_drain(self: Fault, state: State) -> None:
        to_undo = [n["name"] for n in state.get("nodes", []) if not n.get("was_unschedulable")]
        selector = state.get("selector") if len(to_undo) == len(state.get("nodes", [])) else None
        uncordon_nodes(self.target, to_undo, selector)

    def _verify_drain_reverted(self: Fault, state: State) -> list[str]:
        current = {n["metadata"]["name"]: n for n in self.target.nodes()}
        problems = []
        for n in state.get("nodes", []):
            node = current.get(n["name"])
            if node and not n.get("was_unschedulable") and (node.get("spec") or {}).get("unschedulable"):
                problems.append(f"node {n['name']} is still cordoned")
        return problems


class NodeDrain(_CordonDrainMixin, Fault):
    """Cordon and drain nodes (by name, or label selector + count) via the Eviction API."""

    kind = "node-drain"
    last_report: dict[str, Any] | None = None

    def prepare(self) -> State:
        if self.params.get("node") and self.params.get("selector"):
            raise InvalidInput("node-drain: give 'node' or 'selector', not both")
        return self._prepare_drain(_select_nodes(self), None)

    def inject(self, state: State) -> None:
        self._inject_drain(state)

    def revert(self, state: State) -> None:
        self._revert_drain(state)

    def verify_reverted(self, state: State) -> list[str]:
        return self._verify_drain_reverted(state)


def _set_not_ready(target: KubernetesTarget, names: list[str]) -> None:
    from kubernetes.client.rest import ApiException

    core = target.core  # refused here (TargetRefused) when the context is not allowed
    target.mark_before_change()
    for name in names:
        try:
            core.patch_node(name, {"metadata": {"labels": {NOT_READY_LABEL: "true"}}},
                            _request_timeout=target.request_timeout)
        except ApiException as exc:
            raise FaultError(f"labelling node {name} not-ready failed: {_api_error(exc)}") from None


def _restore_not_ready(target: KubernetesTarget, nodes: list[dict]) -> None:
    from kubernetes.client.rest import ApiException

    current = {n["metadata"]["name"]: n for n in target.nodes()}
    for n in nodes:
        node = current.get(n["name"])
        if node is None:
            continue
        labels = node["metadata"].get("labels") or {}
        previous = n.get("previous_label")
        if labels.get(NOT_READY_LABEL) == previous:
            continue
        try:
            target.core.patch_node(n["name"], {"metadata": {"labels": {NOT_READY_LABEL: previous}}},
                                   _request_timeout=target.request_timeout)
        except ApiException as exc:
            if exc.status != 404:
                raise FaultError(f"restoring node {n['name']} failed: {_api_error(exc)}") from None


def _prepare_not_ready(fault: Fault, nodes: list[dict]) -> State:
    real = [n["metadata"]["name"] for n in nodes if not node_is_simulated(n)]
    if real:
        raise FaultError(
            f"{fault.kind}: {', '.join(real[:5])} are real nodes. Making a node NotReady is "
            "done here through KWOK's node-not-ready stage, which only simulated nodes "
            "have; on real nodes stop the kubelet (not done by this harness), or use "
            "zone-loss mode drain. Nothing was changed."
        )
    return {
        "nodes": [
            {
                "name": n["metadata"]["name"],
                "previous_label": (n["metadata"].get("labels") or {}).get(NOT_READY_LABEL),
                "was_ready": node_is_ready(n),
            }
            for n in nodes
        ]
    }


def _verify_not_ready_reverted(target: KubernetesTarget, state: State, wait: float = 15.0) -> list[str]:
    deadline = time.monotonic() + wait
    while True:
        current = {n["metadata"]["name"]: n for n in target.nodes()}
        problems = []
        for n in state.get("nodes", []):
            node = current.get(n["name"])
            if node is None:
                continue
            if (node["metadata"].get("labels") or {}).get(NOT_READY_LABEL) != n.get("previous_label"):
                problems.append(f"node {n['name']} still has label {NOT_READY_LABEL}")
            elif n.get("was_ready") and not node_is_ready(node):
                problems.append(f"node {n['name']} is not Ready again")
        if not problems or time.monotonic() >= deadline:
            return problems
        time.sleep(0.25)


class NodeNotReady(Fault):
    """Make nodes NotReady (KWOK's node-not-ready stage: the 'kubelet' stops reporting)."""

    kind = "node-not-ready"

    def prepare(self) -> State:
        if self.params.get("node") and self.params.get("selector"):
            raise InvalidInput("node-not-ready: give 'node' or 'selector', not both")
        return _prepare_not_ready(self, _select_nodes(self))

    def inject(self, state: State) -> None:
        _set_not_ready(self.target, [n["name"] for n in state["nodes"]])

    def revert(self, state: State) -> None:
        _restore_not_ready(self.target, state.get("nodes", []))

    def verify_reverted(self, state: State) -> list[str]:
        return _verify_not_ready_reverted(self.target, state)


class ZoneLoss(_CordonDrainMixin, Fault):
    """Lose every node of one zone: cordon + drain them (mode ``drain``, the default), or
    make them NotReady (mode ``not-ready``; the lab's ``blackhole``/``refuse`` map here:
    a zone cut off from the network is, to Kubernetes, nodes that stop reporting)."""

    kind = "zone-loss"
    last_report: dict[str, Any] | None = None

    def _mode(self) -> str:
        mode = self.params.get("mode") or "drain"
        if mode in ("blackhole", "refuse"):
            return "not-ready"
        if mode not in ("drain", "not-ready"):
            raise InvalidInput(f"zone-loss: mode {mode!r} is not known on Kubernetes (drain, not-ready)")
        return mode

    def prepare(self) -> State:
        target: KubernetesTarget = self.target
        zone = str(self.params.get("zone") or "")
        if not zone:
            raise InvalidInput("zone-loss needs 'zone'")
        value = target.zone_value(zone)
        all_nodes = target.nodes()
        nodes = [n for n in all_nodes if target.zone_of(n) == value]
        if not nodes:
            zones = sorted({z for z in (target.zone_of(n) for n in all_nodes) if z})
            raise FaultError(
                f"zone-loss: no node has {target.zone_label}={value} "
                f"(zones in this cluster: {', '.join(zones) or 'none'}); nothing was changed"
            )
        if len(nodes) == len(all_nodes):
            raise FaultError(
                f"zone-loss: zone {value} holds every node of the cluster; losing it is a "
                "whole-cluster outage, not a zone loss. Nothing was changed."
            )
        mode = self._mode()
        if mode == "drain":
            state = self._prepare_drain(nodes, self.params.get("namespace"))
        else:
            state = _prepare_not_ready(self, nodes)
        state.update({"mode": mode, "zone": zone, "zone_value": value,
                      "selector": f"{target.zone_label}={value}"})
        return state

    def inject(self, state: State) -> None:
        if state["mode"] == "drain":
            self._inject_drain(state)
        else:
            _set_not_ready(self.target, [n["name"] for n in state["nodes"]])

    def revert(self, state: State) -> None:
        if state.get("mode") == "not-ready":
            _restore_not_ready(self.target, state.get("nodes", []))
        else:
            self._revert_drain(state)

    def verify_reverted(self, state: State) -> list[str]:
        if state.get("mode") == "not-ready":
            return _verify_not_ready_reverted(self.target, state)
        return self._verify_drain_reverted(state)

    def describe(self) -> str:
        return f"zone-loss zone={self.params.get('zone')} mode={self._mode()}"


# -- cpu-stress ---------------------------------------------------------------------------------
_FOLLOWERS: dict[str, threading.Event] = {}
_FOLLOWERS_LOCK = threading.Lock()


def _cpu_request_millicores(pod: dict) -> int:
    total = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        raw = (res.get("requests") or {}).get("cpu") or (res.get("limits") or {}).get("cpu")
        if raw is None:
            continue
        raw = str(raw)
        total += int(float(raw[:-1])) if raw.endswith("m") else int(float(raw) * 1000)
    return total


class CpuStress(Fault):
    """Raise pods' CPU usage as the metrics pipeline sees it (KWOK's
    ``kwok.x-k8s.io/usage-cpu`` annotation, served by metrics-server), so that an HPA
    scales. Pods created while the fault is active (scale-out) get the same usage.
    Previous values are kept in the journal and on the pods themselves."""

    kind = "cpu-stress"

    def _usage_for(self, pod: dict, state: State) -> str:
        if state.get("millicores") is not None:
            return f"{int(state['millicores'])}m"
        request = _cpu_request_millicores(pod)
        return f"{max(1, int(request * float(state['percent']) / 100.0))}m"

    def prepare(self) -> State:
        target: KubernetesTarget = self.target
        ns, sel = _namespace(self), _selector(self)
        if not sel:
            raise InvalidInput("cpu-stress needs a non-empty 'selector' (e.g. {app: api})")
        millicores, percent = self.params.get("millicores"), self.params.get("percent")
        if (millicores is None) == (percent is None):
            raise InvalidInput("cpu-stress: give exactly one of 'millicores' or 'percent' (of the pods' CPU request)")
        pods = [p for p in target.pods(ns, sel) if not pod_is_terminating(p)]
        if not pods:
            raise FaultError(f"cpu-stress: no pod matches {sel} in namespace {ns}; nothing was changed")
        if percent is not None and any(_cpu_request_millicores(p) == 0 for p in pods):
            raise InvalidInput("cpu-stress: 'percent' needs CPU requests on the pods; give 'millicores'")
        nodes = {n["metadata"]["name"]: n for n in target.nodes()}
        real = [
            p["metadata"]["name"] for p in pods
            if (p.get("spec") or {}).get("nodeName") in nodes
            and not node_is_simulated(nodes[p["spec"]["nodeName"]])
        ]
        if real:
            raise FaultError(
                f"cpu-stress: {', '.join(real[:5])} run on real nodes; this fault sets KWOK's "
                "simulated usage, which real kubelets ignore. Nothing was changed."
            )
        return {
            "namespace": ns,
            "selector": sel,
            "millicores": millicores,
            "percent": percent,
            "token": uuid.uuid4().hex[:12],
            "pods": {
                p["metadata"]["name"]: (p["metadata"].get("annotations") or {}).get(USAGE_CPU_ANNOTATION)
                for p in pods
            },
        }

    def _stress(self, pod: dict, state: State) -> None:
        from kubernetes.client.rest import ApiException

        ann = pod["metadata"].get("annotations") or {}
        if ann.get(STRESS_MARK) == state["token"]:
            return
        patch: dict[str, Any] = {USAGE_CPU_ANNOTATION: self._usage_for(pod, state), STRESS_MARK: state["token"]}
        if USAGE_CPU_ANNOTATION in ann:
            patch[STRESS_PREVIOUS] = ann[USAGE_CPU_ANNOTATION]
        try:
            self.target.core.patch_namespaced_pod(
                pod["metadata"]["name"], state["namespace"], {"metadata": {"annotations": patch}},
                _request_timeout=self.target.request_timeout,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise FaultError(f"cpu-stress: patching {pod['metadata']['name']}: {_api_error(exc)}") from None

    def inject(self, state: State) -> None:
        self.target.mark_before_change()
        pods = [p for p in self.target.pods(state["namespace"], state["selector"]) if not pod_is_terminating(p)]
        for pod in pods:
            self._stress(pod, state)
        stop = threading.Event()
        with _FOLLOWERS_LOCK:
            _FOLLOWERS[state["token"]] = stop

        def follow() -> None:  # new pods (scale-out, replacements) get the same load
            while not stop.wait(1.0):
                try:
                    for pod in self.target.pods(state["namespace"], state["selector"]):
                        if not pod_is_terminating(pod):
                            self._stress(pod, state)
                except Exception as exc:  # keep following; revert cleans up regardless
                    log.warning("cpu-stress follower: %s", exc)

        threading.Thread(target=follow, name=f"cpu-stress-{state['token']}", daemon=True).start()

    def revert(self, state: State) -> None:
        from kubernetes.client.rest import ApiException

        with _FOLLOWERS_LOCK:
            stop = _FOLLOWERS.pop(state.get("token", ""), None)
        if stop is not None:
            stop.set()
        for pod in self.target.pods(state["namespace"], state["selector"]):
            ann = pod["metadata"].get("annotations") or {}
            if ann.get(STRESS_MARK) != state["token"]:
                continue
            name = pod["metadata"]["name"]
            previous = ann.get(STRESS_PREVIOUS, state.get("pods", {}).get(name))
            patch = {USAGE_CPU_ANNOTATION: previous, STRESS_MARK: None, STRESS_PREVIOUS: None}
            try:
                self.target.core.patch_namespaced_pod(
                    name, state["namespace"], {"metadata": {"annotations": patch}},
                    _request_timeout=self.target.request_timeout,
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise FaultError(f"cpu-stress revert: patching {name}: {_api_error(exc)}") from None

    def verify_reverted(self, state: State) -> list[str]:
        return [
            f"pod {p['metadata']['name']} still has the simulated CPU load"
            for p in self.target.pods(state["namespace"], state["selector"])
            if (p["metadata"].get("annotations") or {}).get(STRESS_MARK) == state.get("token")
        ]


FAULTS: dict[str, type[Fault]] = {
    cls.kind: cls for cls in (PodKill, NodeDrain, ZoneLoss, NodeNotReady, CpuStress)
}
KubernetesTarget.faults = dict(FAULTS)

"""Node operations of the Kubernetes faults: cordon, drain, NotReady.

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

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from harness.errors import FaultError
from harness.faults.base import Fault, State
from harness.targets.kubernetes.target import (
    KubernetesTarget,
    node_is_ready,
    node_is_simulated,
    pod_is_terminating,
)
from harness.targets.kubernetes.k8sutil import (
    NOT_READY_LABEL,
    DEFAULT_DRAIN_TIMEOUT,
    EVICTION_WORKERS,
    DrainBlocked,
    _api_error,
    _call_chaosk8s,
    _timeout,
    _pod_key,
    _drain_candidate,
    _unmanaged_pods,
    _node_states,
)

log = logging.getLogger(__name__)


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

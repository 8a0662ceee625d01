"""Shared pieces of the Kubernetes faults: constants, selectors, API errors, node and pod helpers."""
from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from harness.errors import ExperimentFailed, FaultError, InvalidInput
from harness.faults.base import Fault
from harness.quantities import parse_duration
from harness.targets.kubernetes.target import KubernetesTarget, _selector_string


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

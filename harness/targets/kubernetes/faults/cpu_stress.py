"""cpu-stress on Kubernetes: the pods' simulated CPU usage (KWOK)."""
from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

from harness.errors import FaultError, InvalidInput
from harness.faults.base import Fault, State
from harness.targets.kubernetes.target import KubernetesTarget, node_is_simulated, pod_is_terminating
from harness.targets import registry
from harness.targets.kubernetes.k8sutil import (
    USAGE_CPU_ANNOTATION,
    STRESS_MARK,
    STRESS_PREVIOUS,
    _api_error,
    _namespace,
    _selector,
)

log = logging.getLogger(__name__)


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


@registry.fault("kubernetes")
class K8sCpuStress(Fault):
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

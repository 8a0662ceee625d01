"""pod-kill on Kubernetes: pods deleted through chaostoolkit-kubernetes."""
from __future__ import annotations

import logging
import math
import re

from harness.errors import FaultError, InvalidInput
from harness.faults.base import Fault, State
from harness.targets.kubernetes.target import KubernetesTarget, pod_is_terminating
from harness.targets import registry
from harness.targets.kubernetes.k8sutil import (
    _call_chaosk8s,
    _namespace,
    _selector,
    _pick,
)

log = logging.getLogger(__name__)


@registry.fault("kubernetes")
class K8sPodKill(Fault):
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

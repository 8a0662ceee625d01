"""replicas on Kubernetes: HPA (autoscaling/v2) or Deployment counts, judged by the shared ReplicaJudge."""
from __future__ import annotations

import time
from typing import Any

from harness.checks.base import Check, CheckResult, RunClock
from harness.checks.replicas import ReplicaJudge
from harness.errors import InvalidInput
from harness.targets.kubernetes.target import KubernetesTarget
from harness.targets import registry
from harness.targets.kubernetes.watch import (
    POLL,
    _within,
    _namespace,
    _wait_for_injection,
)


@registry.check("kubernetes")
class K8sReplicas(Check):
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

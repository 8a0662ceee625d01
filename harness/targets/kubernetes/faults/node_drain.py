"""node-drain on Kubernetes: cordon, then evictions honouring PodDisruptionBudgets."""
from __future__ import annotations

from typing import Any

from harness.errors import InvalidInput
from harness.faults.base import Fault, State
from harness.targets import registry
from harness.targets.kubernetes.k8sutil import _select_nodes
from harness.targets.kubernetes.nodeops import _CordonDrainMixin


@registry.fault("kubernetes")
class K8sNodeDrain(_CordonDrainMixin, Fault):
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

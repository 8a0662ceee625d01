"""node-not-ready on Kubernetes: KWOK's NotReady stage label on simulated nodes."""
from __future__ import annotations


from harness.errors import InvalidInput
from harness.faults.base import Fault, State
from harness.targets import registry
from harness.targets.kubernetes.k8sutil import _select_nodes
from harness.targets.kubernetes.nodeops import (
    _set_not_ready,
    _restore_not_ready,
    _prepare_not_ready,
    _verify_not_ready_reverted,
)


@registry.fault("kubernetes")
class K8sNodeNotReady(Fault):
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

"""zone-loss on Kubernetes: every node of the zone drained or made NotReady."""
from __future__ import annotations

from typing import Any

from harness.errors import FaultError, InvalidInput
from harness.faults.base import Fault, State
from harness.targets.kubernetes.target import KubernetesTarget
from harness.targets import registry
from harness.targets.kubernetes.nodeops import (
    _CordonDrainMixin,
    _set_not_ready,
    _restore_not_ready,
    _prepare_not_ready,
    _verify_not_ready_reverted,
)


@registry.fault("kubernetes")
class K8sZoneLoss(_CordonDrainMixin, Fault):
    """Lose every node of one zone: cordon + drain them (mode ``drain``, the default), or
    make them NotReady (mode ``not-ready``; the lab's ``blackhole``/``refuse`` map here:
    a zone cut off from the network is, to Kubernetes, nodes that stop reporting)."""

    kind = "zone-loss"
    last_report: dict[str, Any] | None = None

    def problems(self) -> list[str]:
        try:
            self._mode()
        except InvalidInput as exc:
            return [str(exc).removeprefix("zone-loss: ")]
        return []

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

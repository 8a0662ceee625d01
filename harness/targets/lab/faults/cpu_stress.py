"""CPU stress on the lab: a CPU spike inside the selected replicas ("pods")."""
from __future__ import annotations

import urllib.request

from harness.errors import FaultError
from harness.faults.base import Fault, State
from harness.targets import registry


def _burn(addr: str, millicores: int) -> None:
    req = urllib.request.Request(f"http://{addr}/api/burn?millicores={millicores}", data=b"", method="POST")
    urllib.request.urlopen(req, timeout=2).read()


@registry.fault("lab")
class LabCpuStress(Fault):
    """Each selected replica burns ``millicores`` of CPU (or ``percent`` of its CPU
    request) until reverted, like stress-ng inside a container. Replicas started
    later (by scale-out) are not stressed, as with StressChaos on selected pods."""

    kind = "cpu-stress"

    def prepare(self) -> State:
        replicas = [r for r in self.target.replicas(self.params.get("selector") or {"app": "api"}) if r["pid"]]
        if not replicas:
            raise FaultError("cpu-stress: no running replica matches the selector")
        if "millicores" in self.params:
            mc = int(self.params["millicores"])
        else:
            request = self.target.orchestrator_state()["policy"]["cpu_request"]
            mc = int(float(self.params.get("percent", 100)) / 100.0 * request * 1000)
        return {"millicores": mc, "replicas": [{"name": r["name"], "addr": r["addr"]} for r in replicas]}

    def inject(self, state: State) -> None:
        failed = []
        for r in state["replicas"]:
            try:
                _burn(r["addr"], state["millicores"])
            except OSError as exc:
                failed.append(f"{r['name']}: {exc}")
        if len(failed) == len(state["replicas"]):
            raise FaultError("cpu-stress: no replica accepted the burn: " + "; ".join(failed))

    def revert(self, state: State) -> None:
        for r in state["replicas"]:
            try:
                _burn(r["addr"], 0)
            except OSError:
                pass  # a replica that died or moved burns nothing any more

    def describe(self) -> str:
        amount = f"{self.params['millicores']}m" if "millicores" in self.params else f"{self.params.get('percent', 100)}%"
        return f"cpu-stress {amount}"

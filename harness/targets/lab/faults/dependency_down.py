"""dependency-down on the lab: stop the stub external dependency; revert starts it again.

Parameter ``dependency`` (optional) must be ``dependency`` (the lab has one stub).
"""
from __future__ import annotations

import time

from harness.errors import FaultError, InvalidInput
from harness.faults.base import Fault, State
from harness.lab.dependency import Dependency
from harness.targets import registry


@registry.fault("lab")
class LabDependencyDown(Fault):
    kind = "dependency-down"

    def problems(self) -> list[str]:
        name = self.params.get("dependency", "dependency")
        return [] if name == "dependency" else [f"the lab has one dependency, 'dependency' (not '{name}')"]

    def prepare(self) -> State:
        name = self.params.get("dependency", "dependency")
        if name != "dependency":
            raise InvalidInput(f"dependency-down: the lab has one dependency, 'dependency' (not '{name}')")
        return {"dependency": name}

    def inject(self, state: State) -> None:
        dep = Dependency(self.target.cfg)
        if not dep.ok():
            raise FaultError("dependency-down: the dependency is not running (nothing to stop)")
        dep.stop()
        # Fail closed: a stop that did not take (a pid file that no longer names the
        # process, say) must not pass as the dependency's outage.
        deadline = time.time() + 3
        while dep.ok():
            if time.time() > deadline:
                raise FaultError("dependency-down: the dependency still answers after it was stopped "
                                 f"(its pid file {self.target.cfg.path('pids', 'dependency.pid')} "
                                 "did not name the running process)")
            time.sleep(0.1)

    def revert(self, state: State) -> None:
        Dependency(self.target.cfg).start()

    def verify_reverted(self, state: State) -> list[str]:
        return [] if Dependency(self.target.cfg).ok() else ["the dependency is not answering"]

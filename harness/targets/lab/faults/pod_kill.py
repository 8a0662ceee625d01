"""Process faults on the lab: pod-kill (a replica dies as a deleted/OOM-killed pod)."""
from __future__ import annotations

import math
import os
import random
import signal

from harness.errors import FaultError
from harness.faults.base import Fault, State
from harness.lab import procs
from harness.targets import registry


@registry.fault("lab")
class LabPodKill(Fault):
    """SIGKILL replica processes chosen by label. The orchestrator restarts them (as a
    ReplicaSet would), so revert has nothing to undo; it only waits for nothing."""

    kind = "pod-kill"

    def _count(self, candidates: int) -> int:
        if "percent" in self.params:
            return max(1, math.ceil(candidates * float(self.params["percent"]) / 100.0))
        return int(self.params.get("count", 1))

    def preview(self) -> str | None:
        from harness.errors import InvalidInput

        candidates = [r for r in self.target.replicas(self.params.get("selector")) if r["pid"]]
        if not candidates:
            raise InvalidInput(f"no running replica matches {self.params.get('selector')} now")
        n = self._count(len(candidates))
        if n > len(candidates):
            raise InvalidInput(f"asked for {n} replicas, only {len(candidates)} match "
                               f"{self.params.get('selector')} now")
        return f"{n} of {len(candidates)} matching replicas ({', '.join(r['name'] for r in candidates)})"

    def prepare(self) -> State:
        candidates = [r for r in self.target.replicas(self.params.get("selector")) if r["pid"]]
        if not candidates:
            raise FaultError(f"pod-kill: no running replica matches {self.params.get('selector')}")
        n = self._count(len(candidates))
        if n > len(candidates):
            raise FaultError(f"pod-kill: asked for {n} replicas, only {len(candidates)} match")
        victims = random.sample(candidates, n)
        out = []
        for v in victims:
            # the kernel's start time (ticks since boot), which no clock step moves
            out.append({"name": v["name"], "pid": v["pid"], "started": procs.start_ticks(v["pid"]), "zone": v["zone"]})
        return {"victims": out}

    def inject(self, state: State) -> None:
        sig = signal.SIGTERM if int(self.params.get("grace-period", 0) or 0) > 0 else signal.SIGKILL
        for v in state["victims"]:
            try:
                # Never kill a recycled pid: check it is still the same process.
                if procs.same_process(v["pid"], v.get("started")):
                    os.kill(v["pid"], sig)
            except ProcessLookupError:
                pass

    def revert(self, state: State) -> None:
        """Nothing to undo: restarting is the system's job, and what we verify."""

    def describe(self) -> str:
        sel = ",".join(f"{k}={v}" for k, v in (self.params.get("selector") or {}).items())
        n = f"{self.params['percent']}%" if "percent" in self.params else str(self.params.get("count", 1))
        return f"pod-kill {sel} count={n}"

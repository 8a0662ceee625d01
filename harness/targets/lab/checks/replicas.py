"""Lab checks on the api replicas: recovery after a fault, and autoscaling bounds."""
from __future__ import annotations

import time

from harness.checks.base import Check, CheckResult, RunClock
from harness.checks.replicas import ReplicaJudge
from harness.quantities import parse_duration
from harness.targets import registry


@registry.check("lab")
class LabRecovers(Check):
    """All desired replicas ready and every one of them UP in HAProxy again, within
    ``within`` of the fault's injection (``from: inject``) or revert (default).

    "Desired" never counts below what was promised before the fault (the smaller of
    the desired count and the autoscaler's minimum when the check started): a system
    that "recovers" by being scaled to zero has not recovered."""

    kind = "recovers"
    floor = 0

    def healthy(self) -> tuple[bool, str]:
        state = self.target.orchestrator_state()
        reps = state["replicas"]
        ready = sum(1 for r in reps if r["ready"])
        up = self.target.lab.haproxy.backends_up().get("api", 0)
        need = max(state["desired"], self.floor)
        ok = ready >= need and up >= need
        why = "" if need == state["desired"] else f" (desired is {state['desired']} now, {need} before the fault)"
        return ok, f"{ready}/{need} replicas ready, {up} backends up{why}"

    def run(self, clock: RunClock) -> CheckResult:
        within = parse_duration(self.params["within"])
        try:
            before = self.target.orchestrator_state()
            self.floor = min(int(before["desired"]), int(before["policy"]["min_replicas"]))
        except Exception:  # noqa: BLE001 - without a reading, the current desired count decides
            self.floor = 0
        ref_name = self.params.get("from", "revert")
        if ref_name == "revert":
            while not clock.reverted.wait(0.2):
                if clock.stop.is_set():
                    return CheckResult(self.kind, False, "run stopped before the fault was reverted")
            ref = clock.reverted_at or time.time()
        else:
            ref = clock.injected_at or time.time()
        deadline = ref + within
        saw_unhealthy = False
        detail = ""
        while True:
            try:
                ok, detail = self.healthy()
            except Exception as exc:  # noqa: BLE001
                ok, detail = False, f"orchestrator not answering: {exc}"
            now = time.time()
            if ok and (saw_unhealthy or now - ref > 1.0 or ref_name == "revert"):
                took = max(0.0, now - ref)
                return CheckResult(self.kind, True,
                                   f"recovered {took:.1f}s after the fault's {ref_name} (allowed {within:g}s): {detail}",
                                   {"recovery_seconds": round(took, 2), "from": ref_name, "within_seconds": within},
                                   [f"orchestrator /state and HAProxy's backends, every 0.2 s from the fault's {ref_name}"])
            if not ok:
                saw_unhealthy = True
            if now > deadline or clock.stop.is_set():
                watched = now - ref
                why = (f"the run stopped {watched:.1f}s after the fault's {ref_name}, before it recovered"
                       if now <= deadline else f"not recovered {within:g}s after the fault's {ref_name}")
                return CheckResult(self.kind, False, f"{why}: {detail}",
                                   {"recovery_seconds": None, "from": ref_name, "within_seconds": within,
                                    "watched_seconds": round(watched, 1)})
            time.sleep(0.2)


@registry.check("lab")
class LabReplicas(Check):
    """Autoscaling as the plan says, judged as on every target (harness/checks/replicas.py):
    ready replicas reach ``at-least`` within ``within`` of the injection, desired never
    above ``at-most`` nor under ``never-below``, and after the revert desired and ready
    settle ``back-to`` N within ``within``. Read from the lab's orchestrator."""

    kind = "replicas"

    def _read(self) -> dict:
        state = self.target.orchestrator_state()
        policy = state.get("policy") or {}
        return {
            "desired": int(state["desired"]),
            "current": sum(1 for r in state.get("replicas", []) if r.get("ready")),
            "min": policy.get("min_replicas"),
            "max": policy.get("max_replicas"),
        }

    def run(self, clock: RunClock) -> CheckResult:
        judge = ReplicaJudge(self.kind, "api replicas", self.params, parse_duration(self.params["within"]),
                             clock.injected_at or time.time(), cap_name="max_replicas")
        sample: dict = {"desired": None, "current": None, "min": None, "max": None}
        while True:
            now = time.time()
            try:
                sample = self._read()
            except Exception:  # noqa: BLE001 - a missed sample is not a verdict
                sample = {**sample, "desired": None, "current": None}
            judge.observe(now, sample, clock)
            if judge.done(now, clock) or now > judge.ref + 3600:
                break
            clock.stop.wait(0.5)
        return judge.result()

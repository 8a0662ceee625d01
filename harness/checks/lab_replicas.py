"""Lab checks on the api replicas: recovery after a fault, and autoscaling bounds."""
from __future__ import annotations

import time

from harness.checks.base import Check, CheckResult, RunClock
from harness.quantities import parse_duration


class Recovers(Check):
    """All desired replicas ready and every one of them UP in HAProxy again, within
    ``within`` of the fault's injection (``from: inject``) or revert (default)."""

    kind = "recovers"

    def healthy(self) -> tuple[bool, str]:
        state = self.target.orchestrator_state()
        reps = state["replicas"]
        ready = sum(1 for r in reps if r["ready"])
        up = self.target.lab.haproxy.backends_up().get("api", 0)
        ok = ready >= state["desired"] and up >= state["desired"]
        return ok, f"{ready}/{state['desired']} replicas ready, {up} backends up"

    def run(self, clock: RunClock) -> CheckResult:
        within = parse_duration(self.params["within"])
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
                                   {"recovery_seconds": round(took, 2), "from": ref_name, "within_seconds": within})
            if not ok:
                saw_unhealthy = True
            if now > deadline or clock.stop.is_set():
                return CheckResult(self.kind, False,
                                   f"not recovered {within:g}s after the fault's {ref_name}: {detail}",
                                   {"recovery_seconds": None, "from": ref_name, "within_seconds": within})
            time.sleep(0.2)


class Replicas(Check):
    """Desired replicas reach ``at-least`` (and never exceed ``at-most``) within ``within``
    of the injection: autoscaling does what the plan says."""

    kind = "replicas"

    def run(self, clock: RunClock) -> CheckResult:
        within = parse_duration(self.params["within"])
        at_least = self.params.get("at-least")
        at_most = self.params.get("at-most")
        ref = clock.injected_at or time.time()
        peak, reached_at, history = 0, None, []
        while True:
            try:
                desired = int(self.target.orchestrator_state()["desired"])
            except Exception:  # noqa: BLE001
                desired = -1
            now = time.time()
            if desired >= 0:
                history.append((round(now - ref, 1), desired))
                peak = max(peak, desired)
                if at_most is not None and desired > at_most:
                    return CheckResult(self.kind, False, f"replicas reached {desired}, above the maximum {at_most}",
                                       {"peak": peak, "history": history[-50:]})
                if at_least is not None and reached_at is None and desired >= at_least:
                    reached_at = now - ref
            done = now > ref + within or clock.stop.is_set()
            if done or (reached_at is not None and at_most is None):
                break
            time.sleep(0.5)
        if at_least is not None and reached_at is None:
            return CheckResult(self.kind, False,
                               f"replicas peaked at {peak}, never reached {at_least} within {within:g}s",
                               {"peak": peak, "history": history[-50:]})
        summary = f"replicas peaked at {peak}"
        if reached_at is not None:
            summary += f", reached {at_least} after {reached_at:.1f}s (allowed {within:g}s)"
        if at_most is not None:
            summary += f", never above {at_most}"
        return CheckResult(self.kind, True, summary,
                           {"peak": peak, "seconds_to_reach": None if reached_at is None else round(reached_at, 1),
                            "history": history[-50:]})


CHECKS = [Recovers, Replicas]

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
                watched = now - ref
                why = (f"the run stopped {watched:.1f}s after the fault's {ref_name}, before it recovered"
                       if now <= deadline else f"not recovered {within:g}s after the fault's {ref_name}")
                return CheckResult(self.kind, False, f"{why}: {detail}",
                                   {"recovery_seconds": None, "from": ref_name, "within_seconds": within,
                                    "watched_seconds": round(watched, 1)})
            time.sleep(0.2)


class Replicas(Check):
    """Autoscaling as the plan says: desired replicas reach ``at-least`` within
    ``within`` of the injection (scale out), never exceed ``at-most`` nor drop under
    ``never-below``, and after the revert settle ``back-to`` N within ``within``
    (scale in). Watches until the fault is reverted (and settled, with back-to)."""

    kind = "replicas"

    def run(self, clock: RunClock) -> CheckResult:
        p = self.params
        within = parse_duration(p["within"])
        at_least, at_most = p.get("at-least"), p.get("at-most")
        never_below, back_to = p.get("never-below"), p.get("back-to")
        ref = clock.injected_at or time.time()
        peak, low = 0, None
        reached_at = settled_at = None
        history: list[tuple[float, int]] = []
        problems: list[str] = []
        while True:
            try:
                desired = int(self.target.orchestrator_state()["desired"])
            except Exception:  # noqa: BLE001 - a missed sample is not a verdict
                desired = None
            now = time.time()
            if desired is not None:
                if not history or history[-1][1] != desired:
                    history.append((round(now - ref, 1), desired))
                peak = max(peak, desired)
                low = desired if low is None else min(low, desired)
                if at_most is not None and desired > at_most and not any("above" in x for x in problems):
                    problems.append(f"reached {desired}, above the maximum {at_most} at +{now - ref:.0f}s")
                if never_below is not None and desired < never_below and not any("below" in x for x in problems):
                    problems.append(f"fell to {desired}, below the minimum {never_below} at +{now - ref:.0f}s")
                if at_least is not None and reached_at is None and desired >= at_least:
                    reached_at = now - ref
                if back_to is not None and clock.reverted.is_set() and settled_at is None and desired == back_to:
                    settled_at = now - (clock.reverted_at or now)
            reverted = clock.reverted.is_set()
            scale_out_over = at_least is None or reached_at is not None or now > ref + within
            if back_to is not None:
                scale_in_over = settled_at is not None or (reverted and now > (clock.reverted_at or now) + within)
                done = reverted and scale_out_over and scale_in_over
            else:
                done = reverted and scale_out_over
            if done or clock.stop.is_set() or now > ref + 3600:
                break
            time.sleep(0.5)
        if at_least is not None and reached_at is None:
            problems.append(f"peaked at {peak}, never reached {at_least} within {within:g}s of the injection")
        if back_to is not None and settled_at is None:
            problems.append(f"did not settle back to {back_to} within {within:g}s of the revert (last {history[-1][1] if history else '?'})")
        measured = {"peak": peak, "lowest": low, "history": history[-60:],
                    "seconds_to_scale_out": None if reached_at is None else round(reached_at, 1),
                    "seconds_to_scale_in": None if settled_at is None else round(settled_at, 1)}
        if problems:
            return CheckResult(self.kind, False, "replicas " + "; ".join(problems), measured)
        parts = [f"replicas peaked at {peak}"]
        if reached_at is not None:
            parts.append(f"reached {at_least} after {reached_at:.1f}s (allowed {within:g}s)")
        if settled_at is not None:
            parts.append(f"back to {back_to} {settled_at:.1f}s after the revert")
        if at_most is not None:
            parts.append(f"never above {at_most}")
        if never_below is not None:
            parts.append(f"never below {never_below}")
        return CheckResult(self.kind, True, ", ".join(parts), measured)


CHECKS = [Recovers, Replicas]

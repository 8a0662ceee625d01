"""The ``replicas`` check's judgement, the same on every target.

A target only knows how to *read* its replica counts (the lab's orchestrator, a
Kubernetes HPA or Deployment); what the parameters mean is decided here once:

- ``at-least`` N: *current* (serving) replicas reach N within ``within`` of the
  injection (scale out; desired alone is only a promise);
- ``at-most`` N / ``never-below`` N: desired never goes above / under, while watched;
- ``back-to`` N: after the revert, desired and current both settle at N within
  ``within`` (scale in);
- ``mismatch-at-most`` T: desired and current never differ for longer than T in one
  stretch, from the injection until the counts agree after the revert (seed 002 §7.2
  warns when an HPA's desired != current for 5 minutes: an autoscaler that asks for
  replicas it cannot get). Watched until the revert, then until the counts agree or
  ``within`` of the revert has passed.

When the autoscaler sits at its own maximum below ``at-least``, the check fails at
once with that reason instead of waiting out ``within``.
"""
from __future__ import annotations

from typing import Any

from harness.checks.base import CheckResult, RunClock, unverified
from harness.quantities import format_duration

#: longer than this without a reading of the replica counts, a passing verdict is unprovable
BLIND_AFTER = 5.0


class ReplicaJudge:
    def __init__(self, kind: str, what: str, params: dict[str, Any], within: float, ref: float,
                 cap_name: str = "maximum"):
        self.kind, self.what, self.within, self.ref, self.cap_name = kind, what, within, ref, cap_name
        self.at_least, self.at_most = params.get("at-least"), params.get("at-most")
        self.never_below, self.back_to = params.get("never-below"), params.get("back-to")
        raw = params.get("mismatch-at-most")
        if raw is not None and not isinstance(raw, (int, float)):
            from harness.quantities import parse_duration

            raw = parse_duration(raw)
        self.mismatch_at_most: float | None = None if raw is None else float(raw)
        #: stretches where desired != current: (start, end) relative to ref; end None while open
        self.mismatch_since: float | None = None
        self.longest_mismatch = 0.0
        self.longest_mismatch_at: float | None = None
        self.longest_mismatch_with: tuple[Any, Any] = (None, None)
        self.agreed_after_revert = False
        self.peak, self.low = 0, None
        self.desired_reached = self.current_reached = self.settled_at = None
        self.history: list[tuple[float, Any, Any]] = []
        self.problems: list[str] = []
        self.cap_reason: str | None = None
        self.last: dict[str, Any] = {"desired": None, "current": None, "min": None, "max": None}
        self.reads = self.misses = 0
        self.read_at: float | None = None
        self.blind_since: float | None = None
        self.longest_blind = 0.0
        self.last_error = ""

    def observe(self, now: float, sample: dict[str, Any], clock: RunClock) -> None:
        """One reading: ``desired``, ``current`` (either may be None when unknown) and
        the autoscaler's own ``min``/``max`` when it has them."""
        self.last = sample
        desired, current = sample.get("desired"), sample.get("current")
        # What the verdict rests on: a stretch without readings makes "never above /
        # never below" unprovable (fail closed: could not verify).
        if desired is None:
            self.misses += 1
            self.blind_since = self.blind_since if self.blind_since is not None else (self.read_at or self.ref)
            self.longest_blind = max(self.longest_blind, now - self.blind_since)
            self.last_error = str(sample.get("error") or self.last_error)
        else:
            self.reads += 1
            self.read_at, self.blind_since = now, None
        ref = self.ref
        if not self.history or (self.history[-1][1], self.history[-1][2]) != (desired, current):
            self.history.append((round(now - ref, 2), desired, current))
        if desired is not None:
            self.peak = max(self.peak, desired)
            self.low = desired if self.low is None else min(self.low, desired)
            if self.at_most is not None and desired > self.at_most and not any("above" in x for x in self.problems):
                self.problems.append(f"desired {desired}, above the maximum {self.at_most} at +{now - ref:.0f}s")
            if (self.never_below is not None and desired < self.never_below
                    and not any("below" in x for x in self.problems)):
                self.problems.append(f"desired {desired}, below the minimum {self.never_below} at +{now - ref:.0f}s")
            if self.at_least is not None and self.desired_reached is None and desired >= self.at_least:
                self.desired_reached = now - ref
        if (self.at_least is not None and self.current_reached is None and current is not None
                and current >= self.at_least):
            self.current_reached = now - ref
        if (self.back_to is not None and clock.reverted.is_set() and self.settled_at is None
                and desired == self.back_to and current == self.back_to):
            self.settled_at = now - (clock.reverted_at or now)
        if desired is not None and current is not None:
            self._mismatch(now, desired, current, clock)
        cap = sample.get("max")
        if (self.at_least is not None and self.current_reached is None and cap is not None
                and cap < self.at_least and current == cap == desired):
            self.cap_reason = f"its {self.cap_name} is {cap}: it scaled to {cap} and cannot reach {self.at_least}"

    def _mismatch(self, now: float, desired: int, current: int, clock: RunClock) -> None:
        if desired != current:
            if self.mismatch_since is None:
                self.mismatch_since = now
            # measured from the first reading that shows it to the last one that still
            # does: never longer than it was (readings come every 0.5-1 s)
            took = now - self.mismatch_since
            if took >= self.longest_mismatch:
                self.longest_mismatch, self.longest_mismatch_at = took, self.mismatch_since - self.ref
                self.longest_mismatch_with = (desired, current)
        else:
            self.mismatch_since = None
            if clock.reverted.is_set():
                self.agreed_after_revert = True

    def mismatch_exceeded(self) -> bool:
        return self.mismatch_at_most is not None and self.longest_mismatch > self.mismatch_at_most

    def done(self, now: float, clock: RunClock) -> bool:
        if self.cap_reason or clock.stop.is_set():
            return True
        reverted = clock.reverted.is_set()
        if self.mismatch_at_most is not None and not (
                reverted and (self.agreed_after_revert or now > (clock.reverted_at or now) + self.within)):
            return False
        scale_out_over = self.at_least is None or self.current_reached is not None or now > self.ref + self.within
        if self.back_to is not None:
            scale_in_over = self.settled_at is not None or (
                reverted and now > (clock.reverted_at or now) + self.within)
            return reverted and scale_out_over and scale_in_over
        # Without bounds to keep watching, the scale-out alone decides.
        return (reverted or self.at_most is None and self.never_below is None) and scale_out_over

    def result(self) -> CheckResult:
        problems = list(self.problems)
        r = self.last
        within = format_duration(self.within)
        if self.cap_reason:
            problems.append(self.cap_reason)
        elif self.at_least is not None and self.current_reached is None:
            problems.append(
                f"peaked at desired {self.peak} (current {r.get('current')}), never reached {self.at_least} "
                f"within {within} of the injection"
            )
        if self.mismatch_exceeded():
            d, c = self.longest_mismatch_with
            problems.append(
                f"desired and current differed for {format_duration(self.longest_mismatch)} from "
                f"+{self.longest_mismatch_at:.0f}s (desired {d}, current {c}; allowed "
                f"{format_duration(self.mismatch_at_most)})")
        if self.back_to is not None and self.settled_at is None and not self.cap_reason:
            problems.append(
                f"did not settle back to {self.back_to} within {within} of the revert "
                f"(desired {r.get('desired')}, current {r.get('current')})"
            )
        measured = {
            "peak": self.peak,
            "lowest": self.low,
            "min": r.get("min"),
            "max": r.get("max"),
            "seconds_to_desired": None if self.desired_reached is None else round(self.desired_reached, 2),
            "seconds_to_scale_out": None if self.current_reached is None else round(self.current_reached, 2),
            "seconds_to_scale_in": None if self.settled_at is None else round(self.settled_at, 2),
            "history": self.history[-60:],
        }
        if self.mismatch_at_most is not None:
            measured["longest_mismatch_s"] = round(self.longest_mismatch, 2)
            measured["mismatch_at_most_s"] = self.mismatch_at_most
        evidence = [f"{self.reads} readings, {self.misses} missed, longest without a reading "
                    f"{format_duration(self.longest_blind)}" + (f" (last error: {self.last_error})" if self.last_error else "")]
        if problems:
            return CheckResult(self.kind, False, f"{self.what}: " + "; ".join(problems), measured, evidence)
        if self.reads == 0 or self.longest_blind > BLIND_AFTER:
            return unverified(self.kind, f"{self.what}: the replica counts could not be read for "
                                         f"{format_duration(self.longest_blind)} ({evidence[0]})", measured, evidence)
        parts = [f"{self.what} peaked at {self.peak}"]
        if self.current_reached is not None:
            parts.append(f"reached {self.at_least} after {format_duration(self.current_reached)} (allowed {within})")
        if self.settled_at is not None:
            parts.append(f"back to {self.back_to} {format_duration(self.settled_at)} after the revert")
        if self.at_most is not None:
            parts.append(f"never above {self.at_most}")
        if self.never_below is not None:
            parts.append(f"never below {self.never_below}")
        if self.mismatch_at_most is not None:
            parts.append(f"desired != current for {format_duration(self.longest_mismatch)} at most "
                         f"(allowed {format_duration(self.mismatch_at_most)})")
        return CheckResult(self.kind, True, ", ".join(parts), measured, evidence)

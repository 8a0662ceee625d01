"""The driver of a scenario's method: steps at offsets and on conditions, on one run.

It runs inside one Chaos Toolkit activity (``run_schedule``) on the main thread of the
experiment's :class:`~harness.engine.run.Run`, and acts only through the run: every
inject and revert goes through :meth:`Run.inject_step` / :meth:`Run.revert_step`, so the
fault journal, the guard, the checks and the run's ``finally`` (revert everything on
abort, Ctrl-C, crash) are the engine's own. A wait that times out fails closed: the
run stops with a failed verdict naming the step, and every fault is reverted.

When a step starts:
  * ``at: T``: T after the method started (steps may overlap);
  * otherwise after the previous step: when it ended (fault: its duration; pause: its
    length), or when it started if it is ``concurrent``, a revert, or a fault held
    until a later ``revert:``;
  * then, with ``when:``, once its condition holds (timeout from when it was ready).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from harness.quantities import format_duration, render_value
from harness.scenario.timing import When

if TYPE_CHECKING:
    from harness.engine.run import Run

TICK = 0.1


class Schedule:
    def __init__(self, run: "Run"):
        self.run = run
        self.method = run.exp.method
        self.t0 = time.time()
        self.started: dict[int, float] = {}
        self.done: set[int] = set()
        self.ends: dict[int, float] = {}  # fault with a duration / pause: when it ends
        self.waiting: dict[int, float] = {}  # step -> when its wait began
        self.labels = {s.label: i for i, s in enumerate(self.method) if s.kind == "fault" and s.label}

    # -- when a step may start ------------------------------------------------------------
    def ready_at(self, i: int) -> float | None:
        step = self.method[i]
        if step.at is not None:
            return self.t0 + step.at
        if i == 0:
            return self.t0
        prev = self.method[i - 1]
        if i - 1 not in self.started:
            return None
        if prev.concurrent or prev.kind == "revert" or (prev.kind == "fault" and not prev.duration):
            return self.started[i - 1]
        return self.started[i - 1] + prev.duration

    def rel(self, t: float) -> str:
        return f"+{t - self.t0:.1f}s"

    # -- the loop --------------------------------------------------------------------------
    def drive(self) -> str:
        run = self.run
        run.event("schedule", f"scenario schedule started ({len(self.method)} steps)")
        while len(self.done) < len(self.method):
            if run.abort_event.is_set():
                raise SystemExit(20)  # the guard tripped or a stop was asked: rollbacks revert
            now = time.time()
            for i, step in enumerate(self.method):
                if i in self.started:
                    continue
                ready = self.ready_at(i)
                if ready is None or now < ready:
                    continue
                if step.when is not None and not self._condition_met(i, step.when, now):
                    continue
                self._start(i, step)
                now = time.time()
            for i, end in list(self.ends.items()):
                if i not in self.done and time.time() >= end:
                    step = self.method[i]
                    if step.kind == "fault":
                        run.revert_step(i)
                    self.done.add(i)
            if len(self.done) < len(self.method) and run.abort_event.wait(TICK):
                raise SystemExit(20)
        return f"schedule done in {time.time() - self.t0:.1f}s"

    def _start(self, i: int, step) -> None:
        now = time.time()
        self.started[i] = now
        if step.kind == "fault":
            self.run.inject_step(i)
            self.started[i] = time.time()
            if step.duration:
                self.ends[i] = self.started[i] + step.duration
            else:
                self.done.add(i)  # held until its revert step (or the end of the run)
        elif step.kind == "pause":
            self.run.event("pause", f"pause {format_duration(step.duration)}" + (f" ({step.label})" if step.label else ""),
                           step=i)
            self.ends[i] = now + step.duration
        elif step.kind == "revert":
            j = self.labels[step.params["revert"]]
            self.run.revert_step(j)
            self.done.add(j)
            self.ends.pop(j, None)
            self.done.add(i)

    # -- conditions -------------------------------------------------------------------------
    def _condition_met(self, i: int, when: When, now: float) -> bool:
        run = self.run
        since = self.waiting.get(i)
        if since is None:
            since = self.waiting[i] = now
            run.event("wait", f"step {i + 1} ({self.method[i].describe()}) waits for {when.describe()}",
                      step=i, condition=when.kind, value=_plain(when.value))
        met, detail = self.evaluate(when, since, now)
        if met:
            run.event("condition", f"step {i + 1}: {detail} after {format_duration(now - since)}",
                      step=i, condition=when.kind, value=_plain(when.value), waited=round(now - since, 3))
            return True
        if now - since >= when.timeout:
            self._fail(i, when, detail, now - since)
        return False

    def evaluate(self, when: When, since: float, now: float) -> tuple[bool, str]:
        run = self.run
        if when.kind in ("alert-fires", "alert-delivered"):
            kind = "alert" if when.kind == "alert-fires" else "notification"
            seen = [e for e in run.events if e["kind"] == kind and e.get("alert") == when.value
                    and (when.kind == "alert-fires" or not when.receiver or e.get("receiver") == when.receiver)]
            fresh = [e for e in seen if e.get("state") == "firing" and e["t"] >= self.t0]
            if fresh:
                e = fresh[0]
                where = f" at {e.get('receiver')}" if kind == "notification" else ""
                return True, f"alert {when.value} {'firing' if kind == 'alert' else 'delivered'}{where} at {self.rel(e['t'])}"
            if not seen:
                return False, f"alert {when.value} was never seen" + (" delivered" if kind == "notification" else "")
            last = seen[-1]
            before = " (it was already firing before the method started)" if last.get("state") == "firing" else ""
            return False, f"alert {when.value} last seen {last.get('state')} at {self.rel(last['t'])}{before}"
        # slo-back: the users' objectives of steady-state over `window`, measured after the wait began
        if run.load is None or run.exp.steady_state is None:
            return False, "no load generator: the users' SLOs cannot be read"
        if now - since < when.window:
            return False, f"measuring (needs {format_duration(when.window)} of readings after the wait began)"
        slos = [s for s in run.exp.steady_state.slos if s.source == "load"
                and ("all" in when.value or s.sli in when.value)]
        w = run.load.series.window(now - when.window, now)
        parts, ok = [], True
        for slo in slos:
            v = w.sli(slo.sli)
            if v is None:
                ok = False
                parts.append(f"{slo.sli}: no readings")
            else:
                holds = slo.objective.holds(v)
                ok = ok and holds
                parts.append(f"{slo.sli} {render_value(v, slo.objective.unit)} ({'meets' if holds else 'misses'} "
                             f"{slo.objective})")
        return ok and bool(slos), ("SLO back: " if ok else "SLO not back: ") + "; ".join(parts)

    def _fail(self, i: int, when: When, detail: str, waited: float) -> None:
        run = self.run
        step = self.method[i]
        where = f" ({step.where})" if step.where else ""
        run.fault_error = (f"step {i + 1}{where} '{step.describe()}' waited {format_duration(waited)} for "
                           f"{when.describe()}: not met ({detail})")
        run.fault_is_failure = True  # the system did not do what the scenario waits for
        run.event("error", run.fault_error, step=i)
        run.abort_event.set()
        run.clock.stop.set()
        raise SystemExit(20)  # stop the method; rollbacks and the run's finally revert


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def run_schedule(run: "Run") -> str:
    return Schedule(run).drive()

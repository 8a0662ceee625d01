"""One run of one experiment, from preflight to verdict.

    preflight (lock, leftover faults, target health) -> load + warm-up
    -> Chaos Toolkit runs the compiled experiment:
         steady-state hypothesis (SLO probes) -> method (inject/hold/revert,
         guard armed, checks watching) -> await recovery -> hypothesis again
         (+ held under fault, expectations met) -> rollbacks (revert all)
    -> revert everything (always) -> stop load -> verdict + journal + report

Every fault is reverted on success, failure, abort, Ctrl-C and exceptions by the
``finally`` of :meth:`Run.execute`; a SIGKILLed run leaves its journal for
``harness cleanup``.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.checks.base import Check, CheckResult, RunClock
from harness.engine import context
from harness.engine.binding import Binding, bind
from harness.engine.guard import Guard, Trip
from harness.engine.results import RunResult, SloResult, Verdict
from harness.errors import (
    EnvironmentNotReady,
    ExperimentFailed,
    FaultError,
    HarnessError,
    InvalidInput,
    SourceUnavailable,
)
from harness.experiment.model import Experiment, Slo, SloSet, Step
from harness.engine.journal import FaultJournal, recover
from harness.engine.lock import RunLock
from harness.load.generator import LoadGenerator
from harness.quantities import render_value
from harness.sli.prometheus import Prometheus
from harness.targets.base import Target

log = logging.getLogger(__name__)

ACT = "harness.engine.activities"
Progress = Callable[..., None]  # progress(event: str, **data)


def _py(name: str, func: str, kind: str = "action", **arguments) -> dict[str, Any]:
    activity = {"type": kind, "name": name,
                "provider": {"type": "python", "module": ACT, "func": func, "arguments": arguments}}
    if kind == "probe":
        activity["tolerance"] = True
    return activity


class Run:
    def __init__(
        self,
        experiment: Experiment,
        target: Target,
        report_dir: str | Path = "reports",
        progress: Progress | None = None,
        dry_run: bool = False,
        lock_wait: float = 0.0,
    ):
        self.exp = experiment
        self.target = target
        self.report_dir = Path(report_dir)
        self.progress = progress or (lambda event, **data: None)
        self.dry_run = dry_run
        self.lock_wait = lock_wait
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        self.run_id = f"{stamp}-{experiment.name}"
        self.journal = FaultJournal(self.run_id)
        self.lock = RunLock()
        self.load: LoadGenerator | None = None
        self.prom = (Prometheus(target.prometheus_url, getattr(target, "request_selector", ""))
                     if target.prometheus_url else None)
        self.clock = RunClock(started_at=time.time())
        self.guard: Guard | None = None
        self.trip: Trip | None = None
        self.abort_event = threading.Event()
        self.interrupted = False
        self.events: list[dict[str, Any]] = []
        self.slo_results: list[SloResult] = []
        self.step_faults: dict[int, str] = {}  # step index -> fault id
        self.fault_records: list[dict[str, Any]] = []
        self.checks: list[Check] = []
        self.check_threads: list[threading.Thread] = []
        self.check_results: list[CheckResult] = []
        self.first_inject: float | None = None
        self.last_revert: float | None = None
        self.recovery: dict[str, Any] | None = None
        self.recovered_at: float | None = None
        self.phase = "preflight"
        self.in_harness_wait = False
        self.runner_active = False
        self.target_samples: list[dict[str, Any]] = []
        self._sampler_stop = threading.Event()
        self.not_steady = False
        self.fault_error: str | None = None
        self.fault_is_failure = False
        self.precondition_problem: str | None = None
        self.precondition_wait = 120.0
        self._revert_lock = threading.Lock()
        self.binding: Binding | None = None
        #: >0 while a revert runs on the main thread: Ctrl-C then waits for it to finish
        #: (a revert cut in half leaves the fault in; the interrupt is recorded and acted on)
        self._critical = 0
        self.in_harness_activity = False

    # -- events and progress -----------------------------------------------------------
    def event(self, kind: str, text: str, **data: Any) -> None:
        rec = {"t": time.time(), "kind": kind, "text": text, **data}
        self.events.append(rec)
        log.info("%s: %s", kind, text)
        self.progress("event", kind=kind, text=text, run=self)

    def set_phase(self, phase: str) -> None:
        self.phase = phase
        self.event("phase", phase)

    # -- lifecycle -----------------------------------------------------------------------------
    def execute(self) -> RunResult:
        started = time.time()
        ctk_journal: dict[str, Any] | None = None
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        # Every step, expectation and source resolved on this target before the lock is
        # taken or load started: a step the target cannot do is an input error (exit 2).
        self.binding = bind(self.exp, self.target)
        self.checks = list(self.binding.checks)
        try:
            self.lock.acquire(f"{self.exp.path} ({self.run_id})", wait=self.lock_wait)
            reverted, errors = recover(lambda m: self.event("cleanup", m))
            if errors:
                raise FaultError("faults left by an earlier run could not be reverted: " + "; ".join(errors)
                                 + " (see `harness cleanup --help`)")
            self.target.preflight()
            if self.dry_run:
                live = bind(self.exp, self.target, live=True)
                for i, step in enumerate(self.exp.method):
                    if step.kind == "fault":
                        now = live.previews.get(i)
                        self.event("dry-run", f"would inject {step.describe()}" + (f": {now}" if now else ""))
                return self._result(started, Verdict("passed", ["dry run: nothing injected"]), None)
            # Ctrl-C, and SIGTERM (e.g. CI cancelling the job) like it: revert, then stop.
            for sig in previous:
                signal.signal(sig, self._on_interrupt_signal)
            if self._preconditions():
                return self._finish(started, None)
            self._start_load()
            self._raise_if_interrupted()
            self._start_sampler()
            context.set_current(self)
            ctk_journal = self._run_chaostoolkit()
            self._raise_if_interrupted()
        except KeyboardInterrupt:
            self.interrupted = True
        except SystemExit as exc:
            # chaoslib's SIGUSR1 handler (how the guard stops a user's blocking activity)
            # raises SystemExit(20); if it lands outside chaoslib's own handling (in a
            # rollback, between activities) it must never end the process without a
            # verdict, a journal and a report.
            if exc.code not in (20, 30) or not (self.trip or self.abort_event.is_set()):
                raise
            self.event("abort", "the run was stopped while Chaos Toolkit was between activities")
        finally:
            if self.interrupted:
                self.event("interrupted", "interrupted by the user (Ctrl-C/SIGTERM): reverting every fault")
            try:
                self.revert_everything("end of run")
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
                self.clock.stop.set()
                if self.guard:
                    self.guard.disarm()
                for t in self.check_threads:
                    t.join(5)
                self._sampler_stop.set()
                if self.load:
                    self.load.stop()
                context.set_current(None)
                self.lock.release()
                if not self.journal.live:
                    self.journal.close()
        return self._finish(started, ctk_journal)

    def _on_interrupt_signal(self, signum, frame) -> None:
        """SIGINT/SIGTERM (Ctrl-C, `harness stop`, CI cancelling): remember it *before*
        raising KeyboardInterrupt. Python loses the exception when the signal lands while
        a finaliser (``__del__``, a weakref callback) runs on the main thread; the flag and
        the abort event make every harness wait stop anyway, so a Ctrl-C is never ignored.
        While a revert runs on the main thread nothing is raised: the revert finishes
        (a half-done revert would leave the fault in), then the run stops."""
        self.interrupted = True
        self.abort_event.set()
        self.clock.stop.set()
        if self._critical:
            return
        raise KeyboardInterrupt

    def _raise_if_interrupted(self) -> None:
        if self.interrupted:
            raise KeyboardInterrupt

    def _finish(self, started: float, ctk_journal: dict[str, Any] | None) -> RunResult:
        verdict = self._verdict(ctk_journal)
        result = self._result(started, verdict, ctk_journal)
        self._write(result, ctk_journal)
        return result

    def _preconditions(self) -> bool:
        """Expectations that cannot judge a fresh fault yet (an alert still firing from
        an earlier event) are waited for; if they stay so, nothing is injected."""
        if self.checks:
            self.set_phase("preconditions")
        for check in self.checks:
            problem = check.precondition(self.precondition_wait)
            if problem:
                self.precondition_problem = problem
                self.event("not-steady", problem, passed=False)
                return True
        return False

    def _start_load(self) -> None:
        spec = self.exp.load
        if spec is None:
            return
        host = spec.host or self.target.load_host
        if not host:
            raise EnvironmentNotReady(f"the {self.target.kind} target has no load host; set load.host in the experiment")
        self.set_phase("warm-up")
        self.load = LoadGenerator(spec, host, base_dir=self.exp.path.parent)
        self.load.start()
        self.event("load", f"{spec.users} users on {host} ({Path(spec.locustfile).name})")
        window = self.exp.steady_state.window if self.exp.steady_state else 0.0
        ready_at = time.time() + max(spec.warmup, window)
        while time.time() < ready_at:
            if not self.load.alive:
                raise EnvironmentNotReady("the load generator stopped during warm-up:\n" + "\n".join(self.load.stderr_tail[-10:]))
            time.sleep(0.1)

    def _start_sampler(self) -> None:
        from harness.engine.alerts import AlertWatcher

        watcher = AlertWatcher(self.target.prometheus_url, getattr(self.target, "notifications", None),
                               lambda kind, text, **data: self.event(kind, text, **data))

        def loop() -> None:
            while not self._sampler_stop.wait(1.0):
                watcher.poll(time.time())
                snap = self.target.snapshot()
                snap["t"] = time.time()
                snap["active_faults"] = len(self.journal.live)
                self.target_samples.append(snap)
                self.progress("tick", run=self)

        threading.Thread(target=loop, name="sampler", daemon=True).start()

    # -- Chaos Toolkit ---------------------------------------------------------------------------
    def compile(self) -> dict[str, Any]:
        """The Chaos Toolkit experiment this run executes."""
        exp = self.exp
        if exp.plain_ctk:
            return copy.deepcopy(exp.raw)
        doc: dict[str, Any] = {
            k: copy.deepcopy(v) for k, v in exp.raw.items()
            if k in ("version", "title", "description", "tags", "contributions", "configuration",
                     "secrets", "extensions", "controls", "runtime")
        }
        doc.setdefault("description", exp.description or exp.title)  # chaoslib requires one
        probes = []
        if exp.steady_state:
            probes += [_py(s.label, "slo_holds", "probe", index=i) for i, s in enumerate(exp.steady_state.slos)]
        user_ssh = exp.raw.get("steady-state-hypothesis") or {}
        probes += copy.deepcopy(user_ssh.get("probes", []))
        if exp.faults and exp.under_fault and exp.under_fault.slos:
            probes.append(_py("SLOs held while faults were active", "held_under_fault", "probe"))
        if exp.expect:
            probes.append(_py("expectations met (" + ", ".join(e.kind for e in exp.expect) + ")",
                              "expectations_met", "probe"))
        if probes:
            doc["steady-state-hypothesis"] = {"title": user_ssh.get("title", exp.title), "probes": probes}
        doc["method"] = self._compile_method()
        doc["rollbacks"] = copy.deepcopy(exp.raw.get("rollbacks", [])) + [_py("revert every fault", "revert_all")]
        return doc

    def _compile_method(self) -> list[dict[str, Any]]:
        """Lay the steps on a timeline: sequential steps follow each other; a
        ``concurrent`` step starts with the next one. Emit inject/revert/hold actions."""
        timeline: list[tuple[float, int, dict[str, Any]]] = []  # (time, order, activity)
        t = 0.0
        order = 0
        for i, step in enumerate(self.exp.method):
            if step.kind == "fault":
                timeline.append((t, order, _py(f"inject {step.describe()}", "inject_fault", step=i)))
                order += 1
                timeline.append((t + step.duration, order, _py(f"revert {step.describe()}", "revert_fault", step=i)))
                order += 1
                if not step.concurrent:
                    t += step.duration
            elif step.kind == "pause":
                t += step.duration
            else:
                timeline.append((t, order, copy.deepcopy(step.activity)))
                order += 1
        timeline.sort(key=lambda x: (x[0], x[1]))
        method: list[dict[str, Any]] = []
        now = 0.0
        for at, _, activity in timeline:
            if at > now:
                method.append(_py(f"hold {at - now:g}s", "hold", seconds=round(at - now, 3)))
                now = at
            method.append(activity)
        if t > now:
            method.append(_py(f"hold {t - now:g}s", "hold", seconds=round(t - now, 3)))
        if self.exp.faults:
            method.append(_py("await recovery", "await_recovery"))
        return method

    def _run_chaostoolkit(self) -> dict[str, Any]:
        from chaoslib.run import EventHandlerRegistry, Runner, RunEventHandler  # noqa: F401
        from chaoslib.types import Strategy

        doc = self.compile()
        run = self

        class Handler(RunEventHandler):
            def start_hypothesis_before(self, experiment):
                run.set_phase("steady-state")

            def start_method(self, experiment):
                run.set_phase("method")

            def start_hypothesis_after(self, experiment):
                run.set_phase("verification")

            def start_rollbacks(self, experiment):
                run.set_phase("rollbacks")

            def hypothesis_before_completed(self, experiment, state, journal):
                if state is None or not state.get("steady_state_met", True):
                    run.not_steady = True

        settings = {"runtime": {"rollbacks": {"strategy": "default" if self.exp.plain_ctk else "always"}}}
        with Runner(Strategy.DEFAULT) as runner:
            runner.register_event_handler(Handler())
            self.runner_active = True
            try:
                journal = runner.run(doc, settings=settings, experiment_vars={})
            except SystemExit as exc:
                # An abort's SIGUSR1 landed where chaoslib does not catch it (rollbacks,
                # the hypothesis after the method): the run still ends with a verdict.
                if exc.code not in (20, 30) or not self.abort_event.is_set():
                    raise
                journal = {"status": "interrupted", "run": [], "deviated": False,
                           "steady_states": {}, "note": "stopped by the harness guard"}
            finally:
                self.runner_active = False
        return journal

    # -- what the activities do ----------------------------------------------------------------
    def _steady_slo(self, index: int) -> Slo:
        assert self.exp.steady_state
        return self.exp.steady_state.slos[index]

    def probe_slo(self, index: int) -> bool:
        slo = self._steady_slo(index)
        assert self.exp.steady_state
        window = self.exp.steady_state.window
        if self.first_inject is None:
            now = time.time()
            res = self.evaluate(slo, "steady-state", now - window, now)
        else:
            if self.recovered_at is not None:
                w = self.exp.recovery_window or min(window, 5.0)
                t1 = self.recovered_at
                t0 = t1 - w
            else:
                t1 = time.time()
                t0 = t1 - (self.exp.recovery_window or min(window, 5.0))
            res = self.evaluate(slo, "recovery", t0, t1)
        return res.passed

    def probe_under_fault(self) -> bool:
        if self.first_inject is None or not self.exp.under_fault:
            return True
        t0, t1 = self.first_inject, self.last_revert or time.time()
        results = [self.evaluate(s, "under-fault", t0, t1) for s in self.exp.under_fault.slos]
        return all(r.passed for r in results)

    def probe_expectations(self) -> bool:
        if self.first_inject is None:
            return True
        for t in self.check_threads:
            t.join()
        return all(r.passed for r in self.check_results)

    def evaluate(self, slo: Slo, phase: str, t0: float, t1: float) -> SloResult:
        observed: float | None = None
        worst_at = worst = None
        if slo.source == "load":
            if self.load:
                w = self.load.series.window(t0, t1)
                observed = w.sli(slo.sli)
                # The worst second tells a person *when* it went wrong.
                worst_val = None
                t = t0
                while t < t1:
                    v = self.load.series.window(t, min(t + 1, t1)).sli(slo.sli)
                    if v is not None and (worst_val is None or not slo.objective.holds(v) and (
                            (slo.objective.op in (">", ">=") and v < worst_val) or
                            (slo.objective.op in ("<", "<=") and v > worst_val))):
                        worst_val, worst_at = v, t - self.clock.started_at
                    t += 1.0
                if worst_val is not None and not slo.objective.holds(worst_val):
                    worst = render_value(worst_val, slo.objective.unit)
        unreadable = None
        if slo.source == "prometheus":
            if self.prom is None:
                unreadable = "the target has no Prometheus"
            else:
                # Prometheus lags by a scrape and an evaluation: ask about t1 a moment later.
                lag = max(0.0, t1 + 2.0 - time.time())
                if lag:
                    time.sleep(min(lag, 3.0))
                try:
                    observed = self.prom.read(slo.query or self.prom.sli_query(slo.sli), window=t1 - t0, at=t1)
                except SourceUnavailable as exc:
                    unreadable = str(exc)
        passed = observed is not None and slo.objective.holds(observed)
        baseline = change = None
        if phase != "steady-state":
            before = [r for r in self.slo_results if r.phase == "steady-state" and r.sli == slo.sli
                      and r.source == slo.source and r.observed is not None]
            if before and observed is not None:
                baseline = before[0].observed
                delta = observed - baseline
                sign = "+" if delta >= 0 else "-"
                change = f"{sign}{render_value(abs(delta), slo.objective.unit)} vs steady state"
        rendered = render_value(observed, slo.objective.unit)
        if unreadable:
            rendered = f"could not verify ({unreadable})"
        elif observed is None and slo.source == "load" and self.load:
            stalled = self.load.series.window(t0, t1).generator_records
            if stalled:
                rendered = f"no data (the load generator itself stalled: {stalled} records left out)"
        res = SloResult(phase, slo.label, slo.sli, slo.source, str(slo.objective), observed,
                        rendered, passed, t0, t1, worst_at, worst, baseline, change,
                        objective_op=slo.objective.op, objective_value=slo.objective.value,
                        unit=slo.objective.unit)
        self.slo_results.append(res)
        self.event("slo", res.sentence(), passed=passed)
        return res

    def inject_step(self, index: int) -> str:
        step = self.exp.method[index]
        if self.abort_event.is_set():
            raise SystemExit(20)
        fault = self.binding.faults[index] if self.binding and index in self.binding.faults else \
            self.target.fault(step.fault, step.params)
        if self.first_inject is None:
            self._arm()
        try:
            entry = self.journal.inject(fault)
        except Exception as exc:  # noqa: BLE001 - a fault that cannot act ends the run
            # A fault may itself find the system wanting (e.g. a drain a PodDisruptionBudget
            # blocks): that is a failed experiment, not a broken harness.
            self.fault_is_failure = isinstance(exc, ExperimentFailed)
            self.fault_error = f"could not inject {fault.describe()}: {exc}"
            self.event("error", self.fault_error)
            self.abort_event.set()
            self.clock.stop.set()
            raise SystemExit(20) from None  # stop the method; rollbacks and our finally revert
        self.step_faults[index] = entry.fault_id
        if self.first_inject is None:
            self.first_inject = entry.injected_at
            self.clock.injected_at = entry.injected_at
            self._start_checks()
        self.fault_records.append({"step": index, "id": entry.fault_id, "description": entry.description,
                                   "kind": entry.kind, "injected_at": entry.injected_at, "reverted_at": None,
                                   "state": entry.state})
        self.event("inject", entry.description, fault_id=entry.fault_id)
        return entry.description

    def revert_step(self, index: int) -> str:
        fault_id = self.step_faults.get(index)
        if not fault_id:
            return "not injected"
        self._critical += 1
        try:
            with self._revert_lock:
                entry = self.journal.revert(fault_id)
        finally:
            self._critical -= 1
        if self.interrupted:
            raise KeyboardInterrupt
        if entry:
            self._mark_reverted(entry)
        if not self.journal.live:
            self._all_reverted()
        return "reverted"

    def _mark_reverted(self, entry) -> None:
        for rec in self.fault_records:
            if rec["id"] == entry.fault_id:
                rec["reverted_at"] = entry.reverted_at
        self.event("revert", entry.description, fault_id=entry.fault_id)

    def _all_reverted(self) -> None:
        if self.first_inject is not None and not self.clock.reverted.is_set():
            self.last_revert = time.time()
            self.clock.reverted_at = self.last_revert
            self.clock.reverted.set()

    def revert_everything(self, why: str) -> str:
        main = threading.current_thread() is threading.main_thread()
        if main:
            self._critical += 1
        try:
            with self._revert_lock:
                try:
                    entries = self.journal.revert_all()
                except FaultError as exc:
                    self.event("error", str(exc))
                    raise
        finally:
            if main:
                self._critical -= 1
        for e in entries:
            self._mark_reverted(e)
        self._all_reverted()
        return f"reverted {len(entries)} fault(s) ({why})"

    def hold(self, seconds: float) -> str:
        self.in_harness_wait = True
        try:
            if self.abort_event.wait(seconds):
                raise SystemExit(20)  # what chaoslib's SIGUSR1 handler raises: stop, play rollbacks
        finally:
            self.in_harness_wait = False
        return f"held {seconds:g}s"

    def await_recovery(self) -> str:
        """After the last revert: wait until the client-side steady-state SLOs hold
        again over the recovery window; measure how long that took."""
        self.set_phase("recovery")
        ref = self.last_revert or time.time()
        within = self.exp.recovery_within if self.exp.recovery_within is not None else 60.0
        window = self.exp.recovery_window or min(self.exp.steady_state.window if self.exp.steady_state else 5.0, 5.0)
        slos = [s for s in (self.exp.steady_state.slos if self.exp.steady_state else ()) if s.source == "load"]
        deadline = ref + within + window
        self.in_harness_wait = True
        try:
            while True:
                now = time.time()
                if slos and self.load and now - ref >= window:
                    w = self.load.series.window(now - window, now)
                    if all(w.sli(s.sli) is not None and s.objective.holds(w.sli(s.sli)) for s in slos):
                        self.recovered_at = now
                        took = max(0.0, now - window - ref)
                        self.recovery = {"seconds": round(took, 2), "within": within, "window": window,
                                         "passed": took <= within}
                        self.event("recovered", f"steady state again {took:.1f}s after the last revert "
                                                f"(allowed {within:g}s)", passed=took <= within)
                        return "recovered"
                elif not slos and now - ref >= window:
                    self.recovered_at = now
                    self.recovery = {"seconds": None, "within": within, "window": window, "passed": True}
                    return "no client-side SLOs to recover"
                if now > deadline:
                    self.recovered_at = now
                    self.recovery = {"seconds": None, "within": within, "window": window, "passed": False}
                    self.event("not-recovered", f"steady state not back {within:g}s after the last revert", passed=False)
                    return "not recovered"
                if self.abort_event.wait(0.1):
                    raise SystemExit(20)
        finally:
            self.in_harness_wait = False

    # -- guard and checks --------------------------------------------------------------------
    def _arm(self) -> None:
        self.guard = Guard(list(self.exp.abort), self.load.series if self.load else None, self.prom, self._on_trip,
                           load=self.load, bounds=self.exp.guard)
        if self.load:
            self.load.listeners.append(self.guard.on_load_record)
        self.guard.arm()

    def _on_trip(self, trip: Trip) -> None:
        """Called from the guard's thread: revert NOW, then stop the method."""
        self.trip = trip
        try:
            self.revert_everything("abort")
        except FaultError:
            pass
        self.abort_event.set()
        self.clock.stop.set()
        self.event("abort", trip.message(), observed=trip.observed, blind=trip.blind)
        if self.runner_active and not self.in_harness_wait and not self.in_harness_activity:
            # A user's blocking activity is running: interrupt it the way chaoslib does.
            os.kill(os.getpid(), signal.SIGUSR1)

    def _start_checks(self) -> None:
        for check in self.checks:
            def work(c: Check = check) -> None:
                try:
                    res = c.run(self.clock)
                except Exception as exc:  # noqa: BLE001 - a broken check fails, loudly
                    res = CheckResult(c.kind, False, f"{c.describe()}: check could not run: {exc}")
                self.check_results.append(res)
                self.event("check", res.summary, passed=res.passed, check=c.kind)

            t = threading.Thread(target=work, name=f"check-{check.kind}", daemon=True)
            t.start()
            self.check_threads.append(t)

    # -- verdict -------------------------------------------------------------------------------
    def _verdict(self, ctk: dict[str, Any] | None) -> Verdict:
        if self.trip:
            return Verdict("aborted", [self.trip.message() + f" at +{self.trip.at - self.clock.started_at:.1f}s; every fault was reverted"])
        if self.interrupted:
            return Verdict("interrupted", ["interrupted by the user; every fault was reverted"])
        if self.fault_error:
            left = " (some could not be reverted: run `harness cleanup`)" if self.journal.live else \
                "; every fault injected so far was reverted"
            return Verdict("failed" if self.fault_is_failure else "error", [self.fault_error + left])
        if self.precondition_problem:
            return Verdict("not-steady", [self.precondition_problem + "; nothing was injected"])
        if ctk is None:
            return Verdict("error", ["the run did not start"])
        if ctk.get("status") == "interrupted":
            # Ctrl-C, SIGTERM or a signal from an activity (chaoslib's exit_gracefully).
            return Verdict("interrupted", ["interrupted (Ctrl-C/SIGTERM); every fault was reverted"])
        reasons = [r.sentence() for r in self.slo_results if not r.passed]
        if self.first_inject is None and (self.not_steady or reasons):
            return Verdict("not-steady", ["not in steady state before injection; nothing was injected"] + reasons)
        reasons += [c.summary for c in self.check_results if not c.passed]
        if self.recovery and not self.recovery["passed"]:
            reasons.append(f"steady state not back within {self.recovery['within']:g}s of the last revert")
        if ctk.get("status") in ("failed", "aborted"):
            failed = [r["activity"].get("name") for r in ctk.get("run", []) if r.get("status") == "failed"]
            reasons.append(f"Chaos Toolkit status {ctk.get('status')}" + (f": failed {', '.join(failed)}" if failed else ""))
        if ctk.get("deviated") and not reasons:
            probes = [p["activity"]["name"] for p in (ctk.get("steady_states", {}).get("after") or {}).get("probes", [])
                      if not p.get("tolerance_met", True)]
            reasons.append("steady-state hypothesis deviated" + (f": {', '.join(probes)}" if probes else ""))
        if ctk.get("status") == "interrupted" and not reasons:
            reasons.append("Chaos Toolkit reported the run as interrupted")
        if ctk.get("steady_states", {}).get("before") and not ctk["steady_states"]["before"].get("steady_state_met", True):
            if self.first_inject is None:
                return Verdict("not-steady", ["not in steady state before the method; nothing was injected"] + reasons)
        return Verdict("failed" if reasons else "passed", reasons)

    def _result(self, started: float, verdict: Verdict, ctk: dict[str, Any] | None) -> RunResult:
        end = time.time()
        client = self.load.series.per_second(started, end) if self.load else []
        server: dict[str, list] = {}
        if self.prom and self.first_inject and not self.dry_run:
            for name, q in (("availability", "sli:availability:ratio_rate30s"),
                            ("p99_seconds", "sli:latency_p99:seconds_rate30s"),
                            ("lb_error_ratio", "sli:lb_error:ratio_rate30s")):
                server[name] = self.prom.range(q, started, end)
        return RunResult(
            run_id=self.run_id, experiment=str(self.exp.path), title=self.exp.title,
            target=self.target.describe(), verdict=verdict, started_at=started, ended_at=end,
            slo_results=self.slo_results, checks=self.check_results, faults=self.fault_records,
            abort=None if not self.trip else {
                "condition": self.trip.condition.text, "observed": self.trip.observed, "message": self.trip.message(),
                "at": self.trip.at, "breach_seen_at": self.trip.breach_seen_at},
            recovery=self.recovery, events=self.events, client_series=client,
            target_series=self.target_samples, server_series=server,
            ctk_status=(ctk or {}).get("status"),
            load=None if not self.exp.load else {"users": self.exp.load.users, "locustfile": self.exp.load.locustfile,
                                                 "host": self.exp.load.host or self.target.load_host},
        )

    def _write(self, result: RunResult, ctk: dict[str, Any] | None) -> None:
        out = self.report_dir / self.run_id
        out.mkdir(parents=True, exist_ok=True)
        journal = dict(ctk or {})  # a Chaos Toolkit journal, plus the harness's own record
        journal["harness"] = result.to_dict()
        path = out / "journal.json"
        path.write_text(json.dumps(journal, indent=1, default=str))
        result.journal_path = str(path)
        try:
            from harness.report import render

            result.report_path = str(render.write_reports(journal, out))
        except ImportError:
            pass
        except Exception as exc:  # noqa: BLE001 - a report failure never hides the verdict
            log.warning("could not render the report: %s", exc)
        journal["harness"]["report_path"] = result.report_path
        journal["harness"]["journal_path"] = result.journal_path
        path.write_text(json.dumps(journal, indent=1, default=str))


def run_experiment(experiment: Experiment, target: Target, **kw: Any) -> RunResult:
    return Run(experiment, target, **kw).execute()


__all__ = ["Run", "run_experiment", "HarnessError", "SloSet", "Step"]

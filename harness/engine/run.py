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

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.checks.base import Check, CheckResult, RunClock
from harness.engine import context
from harness.engine.binding import Binding, bind
from harness.engine.guard import Guard, Trip
from harness.engine.results import RunResult, SloResult, Verdict
from harness.errors import EnvironmentNotReady, ExperimentFailed, FaultError
from harness.experiment.model import Experiment
from harness.engine.journal import FaultJournal, recover
from harness.engine.lock import RunLock
from harness.load.generator import LoadGenerator
from harness.sli.prometheus import Prometheus
from harness.targets.base import Target
from harness.engine.compile import compile_experiment
from harness.engine.outcome import decide, result_of, write
from harness.plan import run_hooks as plan_hooks

log = logging.getLogger(__name__)

Progress = Callable[..., None]  # progress(event: str, **data)


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
        plan_hooks.before(self)  # the plan's policy and its alerts in the live rules (exit 3)
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
                return result_of(self, started, Verdict("passed", ["dry run: nothing injected"]), None)
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
        verdict = decide(self, ctk_journal)
        result = result_of(self, started, verdict, ctk_journal)
        plan_hooks.after(self, result)  # budget burnt, the plan rule of each verdict
        write(self, result, ctk_journal)
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
        # The steady-state window is the last `window` seconds before the method: it
        # starts when the warm-up ends. (It used to overlap the warm-up when the window
        # was the longer, and judged the ramp-up: one error in the first second of load
        # failed a 99.9 % steady state.)
        ready_at = time.time() + spec.warmup + window
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
        return compile_experiment(self.exp)

    def _run_chaostoolkit(self) -> dict[str, Any]:
        from chaoslib.run import Runner, RunEventHandler
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

    def inject_step(self, index: int) -> str:
        step = self.exp.method[index]
        if self.abort_event.is_set():
            raise SystemExit(20)
        fault = self.binding.faults[index] if self.binding and index in self.binding.faults else \
            self.target.fault(step.fault, step.params)
        if self.first_inject is None:
            self._arm()
            for check in self.checks:
                check.before_method()  # e.g. no-lasting-damage reads its gauges
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
                if list(self.journal.live) == [fault_id]:
                    self._revert_starts()
                entry = self.journal.revert(fault_id)
        finally:
            self._critical -= 1
        if entry:
            self._mark_reverted(entry)
        if not self.journal.live:
            self._all_reverted()
        if self.interrupted:  # a Ctrl-C that waited for this revert: stop now
            raise KeyboardInterrupt
        return "reverted"

    def _mark_reverted(self, entry) -> None:
        for rec in self.fault_records:
            if rec["id"] == entry.fault_id:
                rec["reverted_at"] = entry.reverted_at
        self.event("revert", entry.description, fault_id=entry.fault_id)

    def _revert_starts(self) -> None:
        if self.first_inject is not None and self.clock.revert_started_at is None:
            self.clock.revert_started_at = time.time()

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
                if self.journal.live:
                    self._revert_starts()
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


    # -- guard and checks --------------------------------------------------------------------
    def _arm(self) -> None:
        self.guard = Guard(list(self.exp.abort), self.load.series if self.load else None, self.prom, self._on_trip,
                           load=self.load, bounds=self.exp.guard, on_note=lambda text: self.event("guard", text))
        if self.load:
            self.load.listeners.append(self.guard.on_load_record)
        self.guard.arm()
        plan_hooks.armed(self)  # budget_burnt abort conditions

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

def run_experiment(experiment: Experiment, target: Target, **kw: Any) -> RunResult:
    return Run(experiment, target, **kw).execute()


__all__ = ["Run", "run_experiment"]

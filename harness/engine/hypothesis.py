"""The steady-state hypothesis of a run: SLOs judged per phase, and recovery measured.

Chaos Toolkit calls these through :mod:`harness.engine.activities`: before the method
each SLO over the steady-state window; after it, each SLO over the recovery window,
the SLOs held under fault, and the expectations. ``await_recovery`` measures how long
after the last revert the users' SLOs hold again.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from harness.engine.results import SloResult
from harness.errors import SourceUnavailable
from harness.experiment.model import Slo
from harness.quantities import render_value
from harness.sli.client import STALL_SETTLE

if TYPE_CHECKING:
    from harness.engine.run import Run


def steady_slo(run: "Run", index: int) -> Slo:
    assert run.exp.steady_state
    return run.exp.steady_state.slos[index]


def probe_slo(run: "Run", index: int) -> bool:
    slo = steady_slo(run, index)
    assert run.exp.steady_state
    window = run.exp.steady_state.window
    if run.first_inject is None:
        now = clean_steady_window(run, window)
        res = evaluate(run, slo, "steady-state", now - window, now)
    else:
        if run.recovered_at is not None:
            w = run.exp.recovery_window or min(window, 5.0)
            t1 = run.recovered_at
            t0 = t1 - w
        else:
            t1 = time.time()
            t0 = t1 - (run.exp.recovery_window or min(window, 5.0))
        res = evaluate(run, slo, "recovery", t0, t1)
    return res.passed


#: how many fresh steady-state windows a run waits for after its load generator stalled
STEADY_RETRIES = 2


def clean_steady_window(run: "Run", window: float) -> float:
    """The end of a steady-state window the load generator did not stall in.

    A stall of the generator itself (the machine paused for a VM snapshot, the wall clock
    stepped, the generator starved) leaves its records out of every window; a 5 s
    window it fell in then measures a second or two, or nothing ("no data"), and the
    run would call a healthy system not steady. Nothing has been injected yet, so the
    honest answer is to measure a fresh window after the stall (at most
    ``STEADY_RETRIES`` times; a generator that keeps stalling is then judged as it is).
    """
    now = time.time()
    if run.load is None or window <= 0:
        return now
    for _ in range(STEADY_RETRIES):
        stalls = [(a, b) for a, b in list(run.load.series.stalls) if b > now - window - STALL_SETTLE]
        if not stalls:
            break
        longest = max(b - a for a, b in stalls)
        ready = max(b for _, b in stalls) + STALL_SETTLE + window
        run.event("steady-state", f"the load generator itself stalled in the steady-state window (for "
                                  f"{longest:.1f}s: its own delay, not the system's); measuring a fresh "
                                  f"{window:g}s window")
        time.sleep(max(0.0, min(ready - time.time(), window + STALL_SETTLE)) + 0.2)
        now = time.time()
    return now


def probe_under_fault(run: "Run") -> bool:
    if run.first_inject is None or not run.exp.under_fault:
        return True
    t0, t1 = run.first_inject, run.last_revert or time.time()
    results = [evaluate(run, s, "under-fault", t0, t1) for s in run.exp.under_fault.slos]
    return all(r.passed for r in results)


def probe_expectations(run: "Run") -> bool:
    if run.first_inject is None:
        return True
    for t in run.check_threads:
        t.join()
    return all(r.passed for r in run.check_results)


def evaluate(run: "Run", slo: Slo, phase: str, t0: float, t1: float) -> SloResult:
    observed: float | None = None
    worst_at = worst = None
    if slo.source == "load":
        if run.load:
            w = run.load.series.window(t0, t1)
            observed = w.sli(slo.sli)
            # The worst second tells a person *when* it went wrong.
            worst_val = None
            t = t0
            while t < t1:
                v = run.load.series.window(t, min(t + 1, t1)).sli(slo.sli)
                if v is not None and (worst_val is None or not slo.objective.holds(v) and (
                        (slo.objective.op in (">", ">=") and v < worst_val) or
                        (slo.objective.op in ("<", "<=") and v > worst_val))):
                    worst_val, worst_at = v, t - run.clock.started_at
                t += 1.0
            if worst_val is not None and not slo.objective.holds(worst_val):
                worst = render_value(worst_val, slo.objective.unit)
    unreadable = None
    if slo.source == "prometheus":
        if run.prom is None:
            unreadable = "the target has no Prometheus"
        else:
            # Prometheus lags by a scrape and an evaluation: ask about t1 a moment later.
            lag = max(0.0, t1 + 2.0 - time.time())
            if lag:
                time.sleep(min(lag, 3.0))
            try:
                observed = run.prom.read(slo.query or run.prom.sli_query(slo.sli), window=t1 - t0, at=t1)
            except SourceUnavailable as exc:
                unreadable = str(exc)
    passed = observed is not None and slo.objective.holds(observed)
    baseline = change = None
    if phase != "steady-state":
        before = [r for r in run.slo_results if r.phase == "steady-state" and r.sli == slo.sli
                  and r.source == slo.source and r.observed is not None]
        if before and observed is not None:
            baseline = before[0].observed
            delta = observed - baseline
            sign = "+" if delta >= 0 else "-"
            change = f"{sign}{render_value(abs(delta), slo.objective.unit)} vs steady state"
    rendered = render_value(observed, slo.objective.unit)
    if unreadable:
        rendered = f"could not verify ({unreadable})"
    elif observed is None and slo.source == "load" and run.load:
        stalled = run.load.series.window(t0, t1).generator_records
        if stalled:
            rendered = f"no data (the load generator itself stalled: {stalled} records left out)"
    res = SloResult(phase, slo.label, slo.sli, slo.source, str(slo.objective), observed,
                    rendered, passed, t0, t1, worst_at, worst, baseline, change,
                    objective_op=slo.objective.op, objective_value=slo.objective.value,
                    unit=slo.objective.unit)
    run.slo_results.append(res)
    run.event("slo", res.sentence(), passed=passed)
    return res


def await_recovery(run: "Run") -> str:
    """After the last revert: wait until the client-side steady-state SLOs hold
    again over the recovery window; measure how long that took."""
    run.set_phase("recovery")
    ref = run.last_revert or time.time()
    within = run.exp.recovery_within if run.exp.recovery_within is not None else 60.0
    window = run.exp.recovery_window or min(run.exp.steady_state.window if run.exp.steady_state else 5.0, 5.0)
    slos = [s for s in (run.exp.steady_state.slos if run.exp.steady_state else ()) if s.source == "load"]
    deadline = ref + within + window
    run.in_harness_wait = True
    try:
        while True:
            now = time.time()
            if slos and run.load and now - ref >= window:
                w = run.load.series.window(now - window, now)
                if all(w.sli(s.sli) is not None and s.objective.holds(w.sli(s.sli)) for s in slos):
                    run.recovered_at = now
                    took = max(0.0, now - window - ref)
                    run.recovery = {"seconds": round(took, 2), "within": within, "window": window,
                                     "passed": took <= within}
                    run.event("recovered", f"steady state again {took:.1f}s after the last revert "
                                            f"(allowed {within:g}s)", passed=took <= within)
                    return "recovered"
            elif not slos and now - ref >= window:
                run.recovered_at = now
                run.recovery = {"seconds": None, "within": within, "window": window, "passed": True}
                return "no client-side SLOs to recover"
            if now > deadline:
                run.recovered_at = now
                run.recovery = {"seconds": None, "within": within, "window": window, "passed": False}
                run.event("not-recovered", f"steady state not back {within:g}s after the last revert", passed=False)
                return "not recovered"
            if run.abort_event.wait(0.1):
                raise SystemExit(20)
    finally:
        run.in_harness_wait = False

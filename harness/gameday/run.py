"""One GameDay: its scenarios run one after the other on the engine's Run, the team's
events recorded, MTTD/MTTR scored, the postmortem drafts and the GameDay view written.

Each scenario is an ordinary experiment run (``harness.engine.run.Run``: journal,
guard, reverts, verdict, report). The GameDay adds its own event log: what the
facilitator recorded (keys, see :mod:`harness.gameday.console`), or with
``unattended`` what the harness takes instead: detected = the first alert delivered to
a receiver after the inject, mitigated = the users' SLOs back after it (the same
steady-state objectives, over 5 s), resolved = the fault reverted and the steady state
back. An emergency stop (q, Ctrl-C, `harness stop`) reverts every fault through the
run and skips the scenarios left.

Output, in ``<report-dir>/<stamp>-gameday-<name>/``: each scenario's run directory
(``report.html`` with a GameDay section, ``journal.json`` with a ``gameday`` record,
``postmortem.md``), and ``gameday.json``, ``scorecard.md``, ``gameday.html`` for the day.
"""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from harness.gameday.plan import GameDay, GameDayScenario
from harness.gameday.score import incidents, scorecard

SLO_BACK_WINDOW = 5.0


class GameDayRun:
    def __init__(self, gameday: GameDay, target, report_dir: str | Path = "reports", unattended: bool = False,
                 display: Callable[..., None] | None = None, lock_wait: float = 0.0):
        self.gd = gameday
        self.target = target
        self.unattended = unattended
        self.display = display or (lambda event, **data: None)
        self.lock_wait = lock_wait
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        self.out = Path(report_dir) / f"{stamp}-gameday-{gameday.name}"
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.current: GameDayScenario | None = None
        self.run = None  # the live harness.engine.run.Run
        self.stopped = False
        self.runs: list[dict[str, Any]] = []
        self.asked: set[tuple[str, str]] = set()

    # -- the event log ------------------------------------------------------------------
    def record(self, kind: str, text: str = "", by: str = "facilitator", t: float | None = None) -> dict | None:
        """A GameDay event for the scenario running now (keys call this from their thread)."""
        if self.current is None:
            return None
        e = {"t": time.time() if t is None else t, "kind": kind, "text": text, "by": by,
             "scenario": self.current.experiment.name}
        with self.lock:
            self.events.append(e)
        self.display("gameday", gd=self, record=e)
        if kind in ("detected", "acknowledged", "escalated", "mitigated", "resolved"):
            self.checkpoint(kind)
        return e

    def checkpoint(self, moment: str) -> None:
        sc = self.current
        if sc is None:
            return
        for cp in sc.checkpoints:
            key = (sc.experiment.name, cp.question)
            if cp.at == moment and key not in self.asked:
                self.asked.add(key)
                self.record("checkpoint", cp.question, by="plan")

    def emergency_stop(self, why: str = "emergency stop by the facilitator") -> None:
        import os
        import signal

        self.stopped = True
        self.record("stop", why)
        os.kill(os.getpid(), signal.SIGINT)  # the run reverts every fault, as with Ctrl-C

    # -- progress from the live run -------------------------------------------------------
    def _progress(self, event: str, **data: Any) -> None:
        if event == "event":
            kind = data.get("kind")
            if kind == "inject":
                self.checkpoint("inject")
            if self.unattended and kind == "notification":
                self._auto_detect()
        self.display(event, gd=self, **data)

    def _auto_detect(self) -> None:
        run = self.run
        if run is None:
            return
        note = next((e for e in reversed(run.events) if e["kind"] == "notification"), None)
        if not note or note.get("state") != "firing":
            return
        mine = [e for e in self.events if e["scenario"] == self.current.experiment.name and e["kind"] == "detected"]
        undetected = [r for r in run.fault_records
                      if r["injected_at"] <= note["t"] and not any(e["t"] >= r["injected_at"] for e in mine)]
        if undetected:
            self.record("detected", f"first delivered alert: {note.get('alert')} -> {note.get('receiver')}",
                        by="auto", t=note["t"])

    # -- the day ----------------------------------------------------------------------------
    def execute(self) -> dict[str, Any]:
        self.out.mkdir(parents=True, exist_ok=True)
        self.display("start", gd=self)
        for n, sc in enumerate(self.gd.scenarios):
            if n and not self.stopped:
                self._settle(f"{self.gd.settle:g}s for the system to settle before {sc.experiment.name}")
            if self.stopped:
                self.runs.append(self._skipped(sc))
                continue
            self.current = sc
            result, run = self._one(sc)
            if result is not None and result.verdict.status == "not-steady" and not result.faults and not self.stopped:
                # Nothing was injected: the previous scenario's aftermath (or the machine) had not
                # settled. One retry after the settle pause; a second refusal stands.
                self.record("note", f"not in steady state, nothing injected ({'; '.join(result.verdict.reasons)[:160]}); "
                            f"retrying once after {self.gd.settle:g}s", by="harness")
                self._settle(f"{self.gd.settle:g}s before retrying {sc.experiment.name}")
                if not self.stopped:
                    result, run = self._one(sc)
            if result is None:
                self.runs.append(self._skipped(sc))
                continue
            if result.verdict.status == "interrupted":
                self.stopped = True
            if self.unattended:
                self._auto_after(run, result)
            self.checkpoint("end")
            self.runs.append(self._summarise(sc, run, result))
            self.display("scenario-done", gd=self, scenario=sc, result=result)
        self.current = None
        card = scorecard(self.gd, [r for r in self.runs if not r.get("skipped")])
        record = self.to_dict(card)
        from harness.gameday.postmortem import write_all

        write_all(self, record)
        self.display("done", gd=self, record=record)
        return record

    def _one(self, sc: GameDayScenario):
        from harness.engine.run import Run

        run = Run(sc.experiment, self.target, report_dir=self.out, progress=self._progress, lock_wait=self.lock_wait)
        self.run = run
        self.display("scenario", gd=self, scenario=sc)
        try:
            return run.execute(), run
        except KeyboardInterrupt:  # a stop before the run took over Ctrl-C: nothing was injected
            self.stopped = True
            return None, run

    def _settle(self, why: str) -> None:
        self.display("settle", gd=self, text=why)
        try:
            time.sleep(self.gd.settle)
        except KeyboardInterrupt:  # Ctrl-C between scenarios: nothing is injected, stop the day
            self.stopped = True

    def _auto_after(self, run, result) -> None:
        """Unattended: mitigated from the users' SLOs, resolved from revert + steady state."""
        for rec in run.fault_records:
            t0 = rec["injected_at"]
            end = rec.get("reverted_at") or result.ended_at
            mitigated, why = slo_back_after(run, t0, end)
            if mitigated is not None:
                self.record("mitigated", why, by="auto", t=mitigated)
            resolved = max(x for x in (end, mitigated, run.recovered_at if rec is run.fault_records[-1] else None)
                           if x is not None)
            if rec.get("reverted_at") is not None:
                self.record("resolved", "fault reverted and the steady state back", by="auto", t=resolved)
        with self.lock:
            self.events.sort(key=lambda e: e["t"])

    def _summarise(self, sc: GameDayScenario, run, result) -> dict[str, Any]:
        t0, t1 = run.first_inject, run.last_revert or result.ended_at
        cont = {"requests": 0, "failures": 0}
        if run.load and t0:
            w = run.load.series.window(t0, t1)
            cont = {"requests": w.requests, "failures": w.failed}
        slo = {"total": len(result.slo_results), "passed": sum(1 for s in result.slo_results if s.passed)}
        mine = [e for e in self.events if e["scenario"] == sc.experiment.name]
        incs = incidents(sc.experiment.name, sc.severity, result.faults, mine, sc.targets, sc.escalation,
                         self.unattended)
        run_dir = Path(result.journal_path).parent if result.journal_path else None
        return {"scenario": sc.experiment.name, "title": sc.experiment.title, "file": str(sc.file),
                "severity": sc.severity, "services": list(sc.services), "verdict": result.verdict.status,
                "reasons": list(result.verdict.reasons), "run_id": result.run_id,
                "run_dir": str(run_dir) if run_dir else None, "started_at": result.started_at,
                "ended_at": result.ended_at, "first_inject": t0, "last_revert": run.last_revert,
                "continuity": cont, "slo": slo, "incidents": incs,
                "slo_results": [s.sentence() for s in result.slo_results],
                "checks": [c.summary for c in result.checks],
                "availability_objective": _availability_objective(sc),
                "checkpoints": [{"at": c.at, "question": c.question} for c in sc.checkpoints],
                "events": mine}

    def _skipped(self, sc: GameDayScenario) -> dict[str, Any]:
        return {"scenario": sc.experiment.name, "title": sc.experiment.title, "severity": sc.severity,
                "verdict": "not run", "skipped": True, "reasons": ["not run: the GameDay was stopped"],
                "incidents": [], "events": []}

    def to_dict(self, card: dict[str, Any]) -> dict[str, Any]:
        gd = self.gd
        return {"kind": "gameday", "title": gd.title, "date": gd.date, "file": str(gd.path),
                "plan": str(gd.plan_path), "mode": "unattended" if self.unattended else "facilitated",
                "objectives": list(gd.objectives), "participants": [{"name": n, "role": r} for n, r in gd.participants],
                "criteria": {"continuity": str(gd.continuity), "slo-compliance": str(gd.slo_compliance)},
                "actions": list(gd.actions), "stopped": self.stopped, "runs": self.runs, "scorecard": card,
                "events": self.events, "out_dir": str(self.out)}


def _availability_objective(sc: GameDayScenario) -> float | None:
    ss = sc.experiment.steady_state
    for s in (ss.slos if ss else ()):
        if s.sli == "availability" and s.source == "load":
            return s.objective.value
    return None


def slo_back_after(run, t0: float, end: float) -> tuple[float | None, str]:
    """The moment the users' steady-state SLOs hold again after the inject at ``t0``:
    the end of the first 5 s window that holds after the last window that failed
    between t0 and the end of the fault (``end``) plus the recovery allowance. No
    failing window: no user impact, mitigated at once (t0)."""
    slos = [s for s in (run.exp.steady_state.slos if run.exp.steady_state else ()) if s.source == "load"]
    if not slos or not run.load:
        return None, "no users' SLOs to judge mitigation by"
    limit = min(time.time(), end + (run.exp.recovery_within or 60.0) + SLO_BACK_WINDOW)

    def holds(t: float) -> bool | None:
        w = run.load.series.window(t - SLO_BACK_WINDOW, t)
        vals = [w.sli(s.sli) for s in slos]
        if any(v is None for v in vals):
            return None
        return all(s.objective.holds(v) for s, v in zip(slos, vals))

    t, last_bad = t0 + SLO_BACK_WINDOW, None
    while t <= limit:
        if holds(t) is False:
            last_bad = t
        t += 0.5
    if last_bad is None:
        return t0, "the users' SLOs held throughout (no user impact)"
    t = last_bad + 0.5
    while t <= limit + 0.5:
        if holds(t):
            return t, (f"users' SLOs ({', '.join(s.sli for s in slos)}) back over {SLO_BACK_WINDOW:g}s, "
                       f"{t - t0:.1f}s after the inject")
        t += 0.5
    return None, "the users' SLOs were not back"


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=str))

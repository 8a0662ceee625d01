"""How a run ends: its verdict, its result with every number that decided it, and the
journal (Chaos Toolkit's plus the harness's record) and reports written to disk."""
from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from harness.engine.results import RunResult, Verdict
from harness.sli.vocabulary import recorded

if TYPE_CHECKING:
    from harness.engine.run import Run

log = logging.getLogger(__name__)


def decide(run: "Run", ctk: dict[str, Any] | None) -> Verdict:
    if run.trip:
        return Verdict("aborted", [run.trip.message() + f" at +{run.trip.at - run.clock.started_at:.1f}s; every fault was reverted"])
    if run.interrupted:
        return Verdict("interrupted", ["interrupted by the user; every fault was reverted"])
    if run.fault_error:
        left = " (some could not be reverted: run `harness cleanup`)" if run.journal.live else \
            "; every fault injected so far was reverted"
        return Verdict("failed" if run.fault_is_failure else "error", [run.fault_error + left])
    if run.precondition_problem:
        return Verdict("not-steady", [run.precondition_problem + "; nothing was injected"])
    if ctk is None:
        return Verdict("error", ["the run did not start"])
    if ctk.get("status") == "interrupted":
        # Ctrl-C, SIGTERM or a signal from an activity (chaoslib's exit_gracefully).
        return Verdict("interrupted", ["interrupted (Ctrl-C/SIGTERM); every fault was reverted"])
    reasons = [r.sentence() for r in run.slo_results if not r.passed]
    if run.first_inject is None and (run.not_steady or reasons):
        return Verdict("not-steady", ["not in steady state before injection; nothing was injected"] + reasons)
    reasons += [c.summary for c in run.check_results if not c.passed]
    if run.recovery and not run.recovery["passed"]:
        reasons.append(f"steady state not back within {run.recovery['within']:g}s of the last revert")
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
        if run.first_inject is None:
            return Verdict("not-steady", ["not in steady state before the method; nothing was injected"] + reasons)
    return Verdict("failed" if reasons else "passed", reasons)


def result_of(run: "Run", started: float, verdict: Verdict, ctk: dict[str, Any] | None) -> RunResult:
    end = time.time()
    client = run.load.series.per_second(started, end) if run.load else []
    server: dict[str, list] = {}
    if run.prom and run.first_inject and not run.dry_run:
        for name, q in (("availability", recorded("availability")),
                        ("p99_seconds", recorded("latency_p99")),
                        ("lb_error_ratio", "sli:lb_error:ratio_rate30s")):
            server[name] = run.prom.range(q, started, end)
    return RunResult(
        run_id=run.run_id, experiment=str(run.exp.path), title=run.exp.title,
        target=run.target.describe(), verdict=verdict, started_at=started, ended_at=end,
        slo_results=run.slo_results, checks=run.check_results, faults=run.fault_records,
        abort=None if not run.trip else {
            "condition": run.trip.condition.text, "observed": run.trip.observed, "message": run.trip.message(),
            "at": run.trip.at, "breach_seen_at": run.trip.breach_seen_at},
        recovery=run.recovery, events=run.events, client_series=client,
        target_series=run.target_samples, server_series=server,
        ctk_status=(ctk or {}).get("status"),
        load=None if not run.exp.load else {"users": run.exp.load.users, "locustfile": run.exp.load.locustfile,
                                             "host": run.exp.load.host or run.target.load_host},
    )


def write(run: "Run", result: RunResult, ctk: dict[str, Any] | None) -> None:
    out = run.report_dir / run.run_id
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

"""The plan's 30-day error budget, as one run burns it.

For each SLO of the plan's service that the users' view measures (availability, error
ratio, latency under a threshold), from the load generator's records of the whole run:

  requests   bad requests / (budget ratio x the requests of 30 days at the run's rate):
             e.g. 99.9 % -> 0.1 % of 30 days' requests may fail
  minutes    bad minutes / (43,200 x budget ratio): a second is bad when its SLI breaks
             the objective; bad minutes = bad seconds / 60

The plan's ``budget-unit`` says which of the two it counts (both are reported). The
tier is the plan's budget policy (``policy:`` entries "error budget > 50 % remaining",
"20-50 %", "< 20 %", seed 002 §3.5), judged on what remains of the budget after the
burns of the last 30 days recorded in the harness's ledger
(``<state>/budget-ledger.jsonl``: one line per run: plan, service, SLO, share, time).
The ledger counts what experiments burnt; real traffic's burn is the SLO dashboards'.

``budget_burnt: "> 2%"`` under ``abort-when`` trips when the run's largest share so far
exceeds it (checked on every load record, like the users'-view conditions).
"""
from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.load.records import bucket_upper_ms
from harness.plan.model import SLO_PERIOD_S

if TYPE_CHECKING:
    from harness.engine.results import RunResult
    from harness.engine.run import Run

MONTH_MIN = SLO_PERIOD_S / 60.0


def ledger_path() -> Path:
    from harness.state import state_root

    return state_root() / "budget-ledger.jsonl"


def _bad(w, slo) -> int:
    if slo.plugin_id in ("availability", "error_ratio"):
        return w.failed
    if slo.plugin_id.startswith("latency_p") and slo.threshold is not None:
        limit = slo.threshold.value * 1000.0
        return w.failed + sum(n for idx, n in w.hist.items() if bucket_upper_ms(idx) > limit)
    return 0


def _measured(slo) -> bool:
    return slo.plugin_id in ("availability", "error_ratio") or (
        slo.plugin_id.startswith("latency_p") and slo.threshold is not None)


def burn(series, slos, t0: float, t1: float) -> list[dict[str, Any]]:
    """What [t0, t1] of the users' view burnt of each SLO's 30-day budget."""
    out = []
    for slo in slos:
        if not _measured(slo):
            continue
        budget_ratio = 1.0 - slo.objective
        w = series.window(t0, t1)
        bad, total = _bad(w, slo), w.requests
        span = max(1e-9, t1 - t0)
        month_requests = total / span * SLO_PERIOD_S if total else 0.0
        req_share = bad / (budget_ratio * month_requests) if month_requests else 0.0
        bad_s = 0
        t = float(int(t0))
        while t < t1:
            s = series.window(t, t + 1.0)
            if s.requests and _bad(s, slo) / s.requests > budget_ratio:
                bad_s += 1
            t += 1.0
        bad_min = bad_s / 60.0
        min_share = bad_min / (MONTH_MIN * budget_ratio)
        unit = slo.budget_unit or "requests"
        out.append({
            "slo": slo.id, "objective": slo.objective, "budget_unit": unit, "source": str(slo.source),
            "requests": total, "bad_requests": bad, "budget_requests_30d": round(budget_ratio * month_requests, 1),
            "share_by_requests": req_share,
            "bad_seconds": bad_s, "bad_minutes": round(bad_min, 3),
            "budget_minutes_30d": round(MONTH_MIN * budget_ratio, 3), "share_by_minutes": min_share,
            "share": req_share if unit == "requests" else min_share,
        })
    return out


_TIER = re.compile(r"error budget\s*(?:(>|<)\s*(\d+(?:\.\d+)?)\s*%|(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*%)\s*remaining",
                   re.I)


def tiers(plan) -> list[tuple[str, float, float, str, str]]:
    """(op, a, b, name, action [source]) of the plan's budget policy; op '>' (remaining > a),
    '<' (remaining < a) or '-' (a <= remaining <= b); shares in [0, 1]."""
    out = []
    for f in plan.policy:
        m = _TIER.search(f.what)
        if not m:
            continue
        if m.group(1):
            out.append((m.group(1), float(m.group(2)) / 100, 0.0, f.what, f"{f.value} (source: {f.source})"))
        else:
            out.append(("-", float(m.group(3)) / 100, float(m.group(4)) / 100, f.what, f"{f.value} (source: {f.source})"))
    return out


def tier_of(plan, remaining: float) -> dict[str, str] | None:
    for op, a, b, name, action in tiers(plan):
        if (op == ">" and remaining > a) or (op == "<" and remaining < a) or (op == "-" and a <= remaining <= b):
            return {"tier": name, "action": action}
    return None


def _ledger(plan, service: str, now: float) -> dict[tuple, float]:
    used: dict[tuple, float] = {}
    path = ledger_path()
    if not path.exists():
        return used
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("plan") == plan.name and rec.get("service") == service and now - rec.get("t", 0) < SLO_PERIOD_S:
            key = (rec["slo"], rec.get("objective"))  # a copy with another objective has another budget
            used[key] = used.get(key, 0.0) + float(rec.get("share", 0.0))
    return used


def report(run: "Run", result: "RunResult", pj) -> dict[str, Any]:
    slos = [s for s in pj.plan.slos if s.service == pj.service]
    if run.load is None:
        return {"error": "the run sent no load: the users' view that the budget is counted on is missing"}
    if run.dry_run or run.first_inject is None and not result.slo_results:
        return {"note": "nothing ran: no budget burnt"}
    rows = burn(run.load.series, slos, result.started_at, result.ended_at)
    now = time.time()
    used = _ledger(pj.plan, pj.service, now)
    worst = None
    for r in rows:
        before = max(0.0, 1.0 - used.get((r["slo"], r["objective"]), 0.0))
        after = max(0.0, before - r["share"])
        r.update({"remaining_before": before, "remaining_after": after,
                  "tier_before": tier_of(pj.plan, before), "tier_after": tier_of(pj.plan, after)})
        if worst is None or r["share"] > worst["share"]:
            worst = r
    try:
        ledger_path().parent.mkdir(parents=True, exist_ok=True)
        with open(ledger_path(), "a") as f:
            for r in rows:
                f.write(json.dumps({"t": now, "run": run.run_id, "plan": pj.plan.name, "service": pj.service,
                                    "slo": r["slo"], "objective": r["objective"], "share": r["share"]}) + "\n")
    except OSError as exc:
        return {"slos": rows, "worst": worst, "error": f"could not record the burn in {ledger_path()}: {exc}"}
    return {"slos": rows, "worst": worst, "ledger": str(ledger_path()),
            "counted": "whole run (warm-up to end), users' view; 30-day traffic at the run's request rate"}


def watch(run: "Run") -> None:
    """Arm the ``budget_burnt`` abort conditions: judged on each load record."""
    conds = [c for c in run.exp.abort if c.sli == "budget_burnt"]
    pj = run.exp.plan_judging
    if not conds or run.load is None or run.guard is None or pj is None:
        return
    slos = [s for s in pj.plan.slos if s.service == pj.service]
    start = run.clock.started_at
    since: dict[int, float] = {}
    lock = threading.Lock()
    last = [0.0]

    def on_record(rec: dict) -> None:
        now = rec["t"]
        if run.guard.tripped or now - last[0] < 0.5:
            return
        with lock:
            last[0] = now
            rows = burn(run.load.series, slos, start, now)
            value = max((r["share"] for r in rows), default=0.0)
            for i, cond in enumerate(conds):
                if cond.objective.holds(value):
                    t = since.setdefault(i, now)
                    if now - t >= cond.hold:
                        from harness.engine.guard import Trip

                        worst = max(rows, key=lambda r: r["share"])
                        run.event("budget", f"{worst['slo']}: {worst['bad_requests']} bad of {worst['requests']} "
                                            f"requests, {worst['bad_seconds']} bad seconds = "
                                            f"{worst['share'] * 100:.3g}% of the plan's 30-day budget")
                        run.guard._trip(Trip(cond, value, time.time(), now))
                        return
                else:
                    since.pop(i, None)

    run.load.listeners.append(on_record)

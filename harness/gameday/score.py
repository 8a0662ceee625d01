"""GameDay scoring: per inject MTTD / MTTA / MTTR and the escalation against the plan's
chain, scored against the targets of the scenario's severity; the scorecard over the
whole GameDay (seed 002 §15.6: continuity >= 99 %, SLO compliance 100 %).

Everything here is computed from records (the run's events and fault records, the
GameDay's own event log), so a GameDay's numbers can be recomputed from its files.
An inject's incident starts when the fault went in. Detected, acknowledged (response
started), escalated, mitigated (users served again) and resolved are the first such
GameDay events at or after it: keys pressed by the facilitator, or with
``--unattended`` the first delivered alert (detected) and the SLO recovery
(mitigated, resolved). MTTR is inject -> mitigated (service restored for users).
"""
from __future__ import annotations

from typing import Any

from harness.quantities import format_duration

MOMENTS = ("detected", "acknowledged", "escalated", "mitigated", "resolved")


def _first(events: list[dict], kind: str, after: float, scenario: str) -> dict | None:
    for e in events:
        if e["kind"] == kind and e["scenario"] == scenario and e["t"] >= after:
            return e
    return None


def _score(value: float | None, target: float | None, unattended_gap: bool = False) -> dict[str, Any]:
    if value is None:
        return {"value": None, "target": target,
                "passed": None if unattended_gap else False,
                "text": "not recorded (unattended)" if unattended_gap else "not recorded"}
    if target is None:
        return {"value": round(value, 3), "target": None, "passed": None, "text": format_duration(value)}
    ok = value <= target
    return {"value": round(value, 3), "target": target, "passed": ok,
            "text": f"{format_duration(value)} ({'<=' if ok else '>'} {format_duration(target)})"}


def incidents(scenario: str, severity: str, faults: list[dict], gd_events: list[dict],
              targets: dict[str, float | None], chain: tuple[tuple[float, str], ...],
              unattended: bool) -> list[dict[str, Any]]:
    """One record per inject of one scenario run."""
    out = []
    for rec in faults:
        t0 = rec.get("injected_at")
        if t0 is None:
            continue
        moments = {k: _first(gd_events, k, t0, scenario) for k in MOMENTS}
        at = {k: (e["t"] if e else None) for k, e in moments.items()}
        rel = {k: (None if v is None else v - t0) for k, v in at.items()}
        mttr_at = at["mitigated"] if at["mitigated"] is not None else at["resolved"]
        no_impact = "no user impact" in (moments["mitigated"] or {}).get("text", "")
        inc = {
            "scenario": scenario, "severity": severity, "fault": rec.get("description"), "fault_id": rec.get("id"),
            "injected_at": t0, "reverted_at": rec.get("reverted_at"),
            **{f"{k}_at": v for k, v in at.items()},
            "detected_by": (moments["detected"] or {}).get("text", ""),
            "mttd": _score(rel["detected"], targets.get("mttd")),
            "mtta": _score(rel["acknowledged"], targets.get("mtta"), unattended_gap=unattended),
            "mttr": _score(None if mttr_at is None else max(0.0, mttr_at - t0), targets.get("mttr")),
            "escalation": escalation(chain, rel["acknowledged"], rel["escalated"],
                                     None if mttr_at is None else mttr_at - t0, unattended),
        }
        if no_impact and inc["mttr"]["value"] is not None:
            inc["mttr"]["text"] = "0s: no user impact"
        out.append(inc)
    return out


def escalation(chain, ack: float | None, escalated: float | None, restored: float | None,
               unattended: bool) -> dict[str, Any]:
    """The chain says who is called after how long; an incident still open when the
    second level is due must have been escalated by then."""
    if not chain:
        return {"passed": None, "text": "the plan gives no escalation chain for this severity"}
    first = chain[0][1]
    if len(chain) < 2:
        return {"passed": None, "text": f"{first} only"}
    due, who = chain[1]
    parts = [f"{first} at +{format_duration(chain[0][0])}"]
    if ack is not None:
        parts.append(f"acknowledged after {format_duration(ack)}")
    if restored is not None and restored < due:
        return {"passed": True, "due": due, "text": "; ".join(parts) + f"; restored after {format_duration(restored)}, "
                f"before {who} was due at {format_duration(due)}: no escalation needed"}
    if unattended and escalated is None:
        return {"passed": None, "due": due, "text": "; ".join(parts) + f"; {who} due at {format_duration(due)}: "
                "escalation is not recorded unattended"}
    if escalated is None:
        return {"passed": False, "due": due, "text": "; ".join(parts) + f"; still open when {who} was due at "
                f"{format_duration(due)}, never escalated"}
    ok = escalated <= due
    return {"passed": ok, "due": due, "value": round(escalated, 3),
            "text": "; ".join(parts) + f"; escalated after {format_duration(escalated)} "
                    f"({'<=' if ok else '>'} {format_duration(due)}, when {who} is due)"}


def scorecard(gameday, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """runs: one summary per scenario run (see harness.gameday.run). Returns the
    criteria with their measured numbers and the overall verdict."""
    req = sum(r["continuity"]["requests"] for r in runs)
    fail = sum(r["continuity"]["failures"] for r in runs)
    continuity = None if not req else (req - fail) / req
    slo_total = sum(r["slo"]["total"] for r in runs)
    slo_ok = sum(r["slo"]["passed"] for r in runs)
    compliance = None if not slo_total else slo_ok / slo_total
    criteria = []

    def crit(name: str, objective, value: float | None, detail: str) -> None:
        passed = value is not None and objective.holds(value)
        shown = "could not verify (no readings)" if value is None else f"{value * 100:.2f} %"
        criteria.append({"name": name, "objective": str(objective), "value": value, "passed": passed,
                         "text": f"{shown} ({detail})"})

    crit("service continuity while faults were in", gameday.continuity, continuity,
         f"{req - fail} of {req} requests served")
    crit("SLO compliance", gameday.slo_compliance, compliance, f"{slo_ok} of {slo_total} SLO judgements held")
    incs = [i for r in runs for i in r["incidents"]]
    for key, label in (("mttd", "MTTD"), ("mtta", "MTTA"), ("mttr", "MTTR")):
        scored = [i[key] for i in incs if i[key]["passed"] is not None]
        failed = [i for i in incs if i[key]["passed"] is False]
        criteria.append({"name": f"{label} within the severity's target", "passed": not failed if scored else None,
                         "value": len(scored) - len(failed), "text": f"{len(scored) - len(failed)} of {len(scored)} "
                         "injects" + (f"; missed: {', '.join(i['fault'] + ' ' + i[key]['text'] for i in failed)}"
                                      if failed else "")})
    esc = [i["escalation"] for i in incs if i["escalation"]["passed"] is not None]
    criteria.append({"name": "escalation along the plan's chain", "passed": all(e["passed"] for e in esc) if esc else None,
                     "value": sum(1 for e in esc if e["passed"]), "text": f"{sum(1 for e in esc if e['passed'])} of "
                     f"{len(esc)} injects"})
    verdicts = [r["verdict"] for r in runs]
    criteria.append({"name": "every scenario passed", "passed": all(v == "passed" for v in verdicts),
                     "value": sum(1 for v in verdicts if v == "passed"),
                     "text": ", ".join(f"{r['scenario']}: {r['verdict']}" for r in runs)})
    passed = all(c["passed"] is not False for c in criteria) and bool(runs)
    return {"passed": passed, "criteria": criteria, "incidents": incs}

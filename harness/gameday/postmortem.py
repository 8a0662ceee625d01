"""The GameDay's written output: a postmortem draft per scenario run (seed 000's
template), the scorecard, and the GameDay record in each run's journal and report.

postmortem.md (next to the run's report.html), seed 000's template:
  title; summary (window HH:MM:SS-HH:MM:SS, affected services and users, severity,
  whether a postmortem is mandatory for it); timeline (injected, detected, response
  started, escalated, mitigated, resolved, notes, with who/what recorded each); root
  cause (to fill in, with what the harness saw); impact (users from the measured
  SLIs, error budget the incident used against the scenario's availability objective,
  business to fill in); actions (owner, due, status); lessons (the checkpoints'
  questions, to answer).
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.quantities import format_duration

TIMELINE_KINDS = {"inject": "fault injected", "detected": "detected", "acknowledged": "response started (acknowledged)",
                  "escalated": "escalated", "mitigated": "mitigated (users served again)", "resolved": "resolved",
                  "revert": "fault reverted", "note": "note", "stop": "emergency stop", "checkpoint": "question"}


def hhmmss(t: float | None) -> str:
    return "--:--:--" if t is None else datetime.fromtimestamp(t).strftime("%H:%M:%S")


def timeline(run: dict[str, Any], journal_events: list[dict]) -> list[dict[str, Any]]:
    """The rows of the postmortem's timeline: the run's injections and reverts (from its
    journal) and the GameDay's events, in time order."""
    rows = [{"t": e["t"], "kind": e["kind"], "text": e.get("text", ""), "by": "harness"}
            for e in journal_events if e.get("kind") in ("inject", "revert")]
    rows += [{"t": e["t"], "kind": e["kind"], "text": e.get("text", ""), "by": e.get("by", "")}
             for e in run.get("events", [])]
    rank = {k: n for n, k in enumerate(("inject", "detected", "acknowledged", "escalated", "mitigated", "revert",
                                         "resolved"))}
    # an incident with no user impact is mitigated the moment it starts: show it after the inject
    return sorted(rows, key=lambda r: (round(r["t"], 1), rank.get(r["kind"], 9)))


def postmortem_md(gd: dict[str, Any], run: dict[str, Any], journal_events: list[dict]) -> str:
    incs = run.get("incidents", [])
    t0 = run.get("first_inject") or run.get("started_at")
    ends = [i.get("resolved_at") or i.get("reverted_at") for i in incs] + [run.get("last_revert")]
    t1 = max([x for x in ends if x] or [run.get("ended_at") or t0])
    mandatory = run["severity"] in gd.get("postmortem_required", ["P1", "P2"])
    cont = run.get("continuity", {})
    req, fail = cont.get("requests", 0), cont.get("failures", 0)
    avail = (req - fail) / req if req else None
    lines = [f"# Incident report: {run['title']}", "",
             f"GameDay **{gd['title']}** ({gd['date']}), scenario `{run['file']}`, {gd['mode']}; draft written "
             "by the harness: fill in what it cannot know.", "",
             "## Summary", "",
             f"- Window: {datetime.fromtimestamp(t0).strftime('%Y-%m-%d')} {hhmmss(t0)} - {hhmmss(t1)} "
             f"({format_duration(max(0.0, t1 - t0))})",
             f"- Affected: services {', '.join(run.get('services') or ['api'])}; users: "
             + (f"{fail} of {req} requests failed while faults were in (availability {avail * 100:.2f} %)"
                if avail is not None else "no users' measurements"),
             f"- Severity: {run['severity']} (postmortem {'mandatory' if mandatory else 'as needed'} for "
             f"{run['severity']} by the plan)",
             f"- Outcome of the scenario: {run['verdict']}" + (f" ({'; '.join(run['reasons'])})" if run.get("reasons") else ""),
             "", "## Timeline", "", "| Time | Event | Detail | Recorded by |", "|---|---|---|---|"]
    for r in timeline(run, journal_events):
        lines.append(f"| {hhmmss(r['t'])} | {TIMELINE_KINDS.get(r['kind'], r['kind'])} | {_cell(r['text'])} | {r['by']} |")
    lines += ["", "Per inject (targets from the plan's severity):", "",
              "| Fault | MTTD | MTTA | MTTR | Escalation |", "|---|---|---|---|---|"]
    for i in incs:
        lines.append(f"| {_cell(i['fault'])} | {i['mttd']['text']} | {i['mtta']['text']} | {i['mttr']['text']} | "
                     f"{_cell(i['escalation']['text'])} |")
    lines += ["", "## Root cause", "", "_To fill in._ What the harness injected: "
              + "; ".join(i["fault"] for i in incs) + ". What the run found: "
              + ("; ".join(run.get("checks", []) + [s for s in run.get("slo_results", [])][:3]) or "nothing more") + ".",
              "", "## Impact", ""]
    obj = run.get("availability_objective")
    if avail is not None:
        lines.append(f"- Users: availability {avail * 100:.2f} % while faults were in ({fail} failed of {req} requests).")
        if obj is not None and obj < 1:
            allowed = (1 - obj) * req
            used = fail / allowed * 100 if allowed else 0.0
            lines.append(f"- Error budget: {fail} failed requests = {used:.0f} % of what availability >= "
                         f"{obj * 100:g} % allows for those {req} requests.")
    for s in run.get("slo_results", []):
        lines.append(f"- {s}")
    lines += ["- Business: _to fill in_ (orders, payments, revenue, reputation).", "",
              "## Actions", "", "| Action | Owner | Due | Status |", "|---|---|---|---|"]
    for a in gd.get("actions", []):
        lines.append(f"| {_cell(a.get('action', ''))} | {a.get('owner', '')} | {a.get('due', '')} | {a.get('status', 'open')} |")
    lines += ["| _add the improvements found_ | | | open |", "", "## Lessons", ""]
    for cp in run.get("checkpoints", []):
        lines.append(f"- ({cp['at']}) {cp['question']} _answer:_")
    notes = [e for e in run.get("events", []) if e["kind"] == "note"]
    for n in notes:
        lines.append(f"- note at {hhmmss(n['t'])}: {n['text']}")
    lines.append("- _What went well, what did not, where we were lucky._")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def scorecard_md(record: dict[str, Any]) -> str:
    card = record["scorecard"]
    lines = [f"# GameDay scorecard: {record['title']}", "",
             f"{record['date']}, {record['mode']}: **{'PASSED' if card['passed'] else 'FAILED'}**", "",
             "| Criterion | Objective | Measured | Result |", "|---|---|---|---|"]
    for c in card["criteria"]:
        res = {True: "pass", False: "FAIL", None: "not scored"}[c["passed"]]
        lines.append(f"| {c['name']} | {c.get('objective', '')} | {_cell(c['text'])} | {res} |")
    lines += ["", "| Scenario | Severity | Fault | MTTD | MTTA | MTTR | Verdict |", "|---|---|---|---|---|---|---|"]
    for r in record["runs"]:
        for i in r.get("incidents", []) or [None]:
            if i is None:
                lines.append(f"| {r['scenario']} | {r['severity']} | - | - | - | - | {r['verdict']} |")
            else:
                lines.append(f"| {r['scenario']} | {r['severity']} | {_cell(i['fault'])} | {i['mttd']['text']} | "
                             f"{i['mtta']['text']} | {i['mttr']['text']} | {r['verdict']} |")
    return "\n".join(lines) + "\n"


def write_all(gdrun, record: dict[str, Any]) -> None:
    """postmortem.md and the GameDay record in each run's directory (its report
    re-rendered with the GameDay view), then the day's files."""
    from harness.report import render

    out: Path = gdrun.out
    record["postmortem_required"] = list(gdrun.gd.postmortem_required)
    for run in record["runs"]:
        if not run.get("run_dir"):
            continue
        rd = Path(run["run_dir"])
        journal = json.loads((rd / "journal.json").read_text())
        events = (journal.get("harness") or {}).get("events", [])
        pm = rd / "postmortem.md"
        pm.write_text(postmortem_md(record, run, events))
        run["postmortem"] = str(pm)
        journal["gameday"] = {"title": record["title"], "date": record["date"], "mode": record["mode"],
                              "run": run, "scorecard": record["scorecard"], "postmortem": str(pm)}
        (rd / "journal.json").write_text(json.dumps(journal, indent=1, default=str))
        render.write_reports(journal, rd)
    (out / "gameday.json").write_text(json.dumps(record, indent=1, default=str))
    (out / "scorecard.md").write_text(scorecard_md(record))
    from harness.gameday.view import gameday_page

    (out / "gameday.html").write_text(gameday_page(record))

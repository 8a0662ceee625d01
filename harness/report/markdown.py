"""The Markdown summary of one run, for CI job summaries (e.g. ``$GITHUB_STEP_SUMMARY``)."""
from __future__ import annotations

from typing import Any

from harness.report.view import (
    PHASE_NAMES, STATUS_EMOJI, RunView, as_dict, fmt_duration, fmt_epoch, fmt_int, fmt_measured, fmt_pct, num,
    pretty_key,
)


def cell(x: Any) -> str:
    return ("" if x is None else str(x)).replace("|", "\\|").replace("\n", " ")


def summary_md(view: RunView, report_name: str = "report.html") -> str:
    out: list[str] = []
    emoji = STATUS_EMOJI.get(view.status, "")
    out.append(f"## {emoji} {view.word}: {cell(view.title)}")
    out.append("")
    out.append(f"`{view.experiment}` · run `{view.run_id}` · {fmt_epoch(view.started_at)} · "
               f"{fmt_duration(view.duration)} · target {cell(view.target_desc)}")
    out.append("")
    out.append(f"**{view.headline()}**")
    out.append("")
    if view.reasons:
        out.append("**Why:**")
        out.append("")
        out += [f"- {cell(r)}" for r in view.reasons]
        out.append("")
    if view.slos:
        out.append("### SLOs")
        out.append("")
        out.append("| phase | SLO | objective | observed | worst second | result |")
        out.append("|---|---|---|---|---|---|")
        for s in view.slos_sorted():
            wat = num(s.get("worst_at"))
            worst = f"{s.get('worst')} at +{wat:.0f}s" if s.get("worst") and wat is not None else (s.get("worst") or "")
            out.append(f"| {cell(PHASE_NAMES.get(s.get('phase'), s.get('phase')))} | {cell(s.get('label'))} | "
                       f"{cell(s.get('objective'))} | **{cell(s.get('rendered'))}** | {cell(worst)} | "
                       f"{'✅ held' if s.get('passed') else '❌ broken'} |")
        out.append("")
    if view.checks:
        out.append("### Expectations")
        out.append("")
        out.append("| expectation | result | summary | measured |")
        out.append("|---|---|---|---|")
        for c in view.checks:
            meas = ", ".join(f"{pretty_key(k)} {fmt_measured(k, v, view)}" for k, v in as_dict(c.get("measured")).items())
            out.append(f"| {cell(c.get('kind'))} | {'✅ met' if c.get('passed') else '❌ not met'} | "
                       f"{cell(c.get('summary'))} | {cell(meas)} |")
        out.append("")
    from harness.report import plan_section

    out += plan_section.markdown(view)  # each verdict's plan rule and source, budget, policy
    out.append("### Recovery")
    out.append("")
    rec = view.recovery
    if rec:
        secs = num(rec.get("seconds"))
        if secs is not None:
            out.append(f"{'✅' if rec.get('passed') else '❌'} steady state back **{fmt_duration(secs)}** after the last "
                       f"revert (allowed {fmt_duration(num(rec.get('within')))}).")
        elif rec.get("passed") is False:
            out.append(f"❌ steady state **not** back within {fmt_duration(num(rec.get('within')))} of the last revert.")
        else:
            out.append("No client-side SLO to measure recovery by.")
    elif view.abort:
        out.append("Not measured: the run was aborted.")
    else:
        out.append("Not measured.")
    out.append("")
    if view.abort:
        at = view.rel(view.abort.get("at"))
        out.append("### Abort")
        out.append("")
        out.append(f"🛑 {cell(view.abort.get('message') or view.abort.get('condition'))}"
                   + (f" at +{at:.1f}s" if at is not None else ""))
        out.append("")
    b = view.budget()
    out.append("### Error budget (counted in requests)")
    out.append("")
    if b["requests"] and b["objective"] is not None:
        burnt = b["burnt"]
        burnt_txt = "∞ (zero budget)" if burnt == float("inf") else f"{burnt * 100:.1f}%"
        out.append(f"{fmt_int(b['failed'])} of {fmt_int(b['requests'])} requests failed; the objective "
                   f"{fmt_pct(b['objective'])} allows {b['allowed']:,.1f}: **{burnt_txt} of the run's budget burnt**.")
    elif b["requests"]:
        out.append(f"{fmt_int(b['failed'])} of {fmt_int(b['requests'])} requests failed (no availability objective).")
    else:
        out.append("No client-side requests recorded.")
    out.append("")
    if view.faults:
        out.append("### Faults")
        out.append("")
        out.append("| fault | injected | reverted | active |")
        out.append("|---|---|---|---|")
        for w in view.fault_windows():
            out.append(f"| {cell(w.label)} | +{w.start:.1f}s | {'+%.1fs' % w.end if w.reverted else '**not reverted**'} | "
                       f"{fmt_duration(w.end - w.start)} |")
        out.append("")
    for key, data in view.extra_sections().items():
        out.append(f"### {pretty_key(key).capitalize()}")
        out.append("")
        if isinstance(data, dict):
            out += [f"- {pretty_key(k)}: {fmt_measured(k, v, view)}" for k, v in data.items()]
        else:
            out.append(f"`{cell(data)}`")
        out.append("")
    out.append(f"Full report: [{report_name}]({report_name}) · journal: [journal.json](journal.json)")
    out.append("")
    return "\n".join(out)

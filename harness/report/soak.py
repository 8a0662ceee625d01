"""A soak's report: verdicts per item over the loops, flaky items, the first failure,
the whole soak's error budget, and the drift of the no-lasting-damage gauges as charts."""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING

import plotly.graph_objects as go

from harness.report.charts import _hline
from harness.report.render import _write, plotly_js
from harness.report.view import fmt_duration, fmt_pct

if TYPE_CHECKING:
    from harness.soak import Soak

_E = html.escape


def _budget_line(soak: "Soak") -> str:
    b = soak.budget()
    if not b["requests"]:
        return "no users' requests were recorded"
    burnt = "n/a" if b["burnt"] is None else f"{b['burnt'] * 100:.1f} %"
    return (f"{b['failed']} of {b['requests']} users' requests failed "
            f"({fmt_pct(b['failed'] / b['requests'])}); objective {fmt_pct(b['objective'])} allows "
            f"{(b['allowed'] or 0):.0f}: {burnt} of the soak's error budget burnt")


def markdown(soak: "Soak") -> str:
    head = "PASSED" if soak.passed() else "FAILED"
    took = fmt_duration(soak.ended_at - soak.started_at)
    loops = max((r.loop for r in soak.runs), default=0)
    lines = [f"## Soak `{soak.suite}`: {head}", "",
             f"{len(soak.runs)} runs of {len(soak.items)} items over {loops} loop(s) in {took}"
             f"{' (shuffled, seed ' + str(soak.seed) + ')' if soak.shuffle else ''}.", "",
             f"Error budget: {_budget_line(soak)}.", ""]
    if soak.stopped:
        lines += [f"Stopped early: {soak.stopped}", ""]
    lines += ["| item | " + " | ".join(f"loop {n}" for n in range(1, loops + 1)) + " | flaky |",
              "|---|" + "---|" * loops + "---|"]
    flaky = soak.flaky()
    for path, runs in soak.verdicts().items():
        cells = {r.loop: r.status + (f" ({', '.join(f'{v}' for v in r.params.values())})" if r.params else "")
                 for r in runs}
        lines.append(f"| `{path}` | " + " | ".join(cells.get(n, "") for n in range(1, loops + 1))
                     + f" | {'**FLAKY**' if path in flaky else 'no'} |")
    for path, why in flaky.items():
        lines += ["", f"FLAKY `{path}`: {why}"]
    first = soak.first_failure()
    if first:
        lines += ["", f"First failure: loop {first.loop}, `{first.path}`: {first.status}",
                  *[f"- {r}" for r in first.reasons], *([f"- report: `{first.report}`"] if first.report else [])]
    end = soak.end_state
    if soak.damage is not None:
        if end is None:
            lines += ["", "End against start: not judged (the soak was stopped)."]
        else:
            lines += ["", f"End against start: {'OK' if end.verified and end.passed else 'NOT MET'}: {end.summary}"]
            rows = end.measured.get("gauges") or []
            if rows:
                start = soak.start_phase or "at the start"
                cold = soak.cold_start if soak.cold_start and "warm" in start else None
                lines += ["", f"Start: {start}."
                          + (" The cold lab's reading before the first run is shown beside it." if cold else "")]
                lines += ["", f"| gauge | {'cold, ' if cold else ''}start | after the last run | tolerance | ok |",
                          "|---|---|---|---|---|"]
                lines += [f"| {r['gauge']} | "
                          + (f"{round(cold[r['gauge']], 2):g}, " if cold and r['gauge'] in cold else "")
                          + f"{r['before']:g} {r['unit']}".rstrip() + f" | {r['after']:g} {r['unit']}".rstrip() + " | "
                          f"{r['tolerance']} | {'yes' if r['ok'] else '**NO**'} |" for r in rows]
    drift = soak.drift()
    if drift:
        lines += ["", "| gauge (after each run) | first | last | min | max |", "|---|---|---|---|---|"]
        for g, pts in drift.items():
            vals = [v for _, v in pts]
            lines.append(f"| {g} | {vals[0]:g} | {vals[-1]:g} | {min(vals):g} | {max(vals):g} |")
    return "\n".join(lines) + "\n"


def drift_charts(soak: "Soak") -> list[tuple[str, go.Figure]]:
    out = []
    for gauge, pts in soak.drift().items():
        fig = go.Figure(go.Scatter(x=[t for t, _ in pts], y=[v for _, v in pts], mode="lines+markers", name=gauge,
                                   hovertemplate="%{y:g} at %{x:.0f}s<extra></extra>"))
        if pts:
            _hline(fig, pts[0][1], "first run")
        fig.update_layout(title=dict(text=f"<b>{gauge}</b> after each run", x=0.0, font=dict(size=14)), height=220,
                          margin=dict(l=64, r=40, t=40, b=36), plot_bgcolor="white", paper_bgcolor="white",
                          xaxis=dict(title="seconds from the soak's start", gridcolor="#eef0f2", ticksuffix="s"),
                          yaxis=dict(gridcolor="#eef0f2", zeroline=False))
        out.append((gauge, fig))
    return out


def page(soak: "Soak") -> str:
    charts = "".join(f'<div class="chart" id="drift-{_E(g)}">{fig.to_html(full_html=False, include_plotlyjs=False)}</div>'
                     for g, fig in drift_charts(soak))
    md = _E(markdown(soak))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>soak {_E(soak.suite)}</title>"
            f"<script>{plotly_js()}</script><style>body{{font-family:sans-serif;margin:24px;max-width:1100px}}"
            f"pre{{white-space:pre-wrap;background:#f6f8fa;padding:12px}}</style></head><body>"
            f"<h1>Soak {_E(soak.suite)}: {'PASSED' if soak.passed() else 'FAILED'}</h1><pre>{md}</pre>"
            f"<h2>Gauge drift over the soak</h2>{charts or '<p>No gauges were recorded.</p>'}</body></html>")


def write(soak: "Soak", out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "soak.json", "md": out / "soak.md", "html": out / "soak.html"}
    _write(paths["json"], json.dumps(soak.to_dict(), indent=1, default=str))
    _write(paths["md"], markdown(soak))
    _write(paths["html"], page(soak))
    return paths

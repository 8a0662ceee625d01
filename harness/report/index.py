"""The index of a reports folder: every run, pass rate per experiment, recovery-time and
error-budget-burn trends, links to each run's report."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from harness.report import charts
from harness.report.page import CSS, esc, fig_html
from harness.report.view import STATUS_COLOURS, STATUS_WORDS, RunView, fmt_duration, fmt_epoch, num

log = logging.getLogger(__name__)


def run_summary(journal: Any, run_dir: Path) -> dict[str, Any]:
    v = RunView(journal, run_dir.name)
    b = v.budget()
    rec = v.recovery or {}
    return {
        "dir": run_dir.name,
        "run_id": v.run_id,
        "experiment": _experiment_key(v.experiment) or v.title,
        "title": v.title,
        "status": v.status,
        "started_at": v.started_at,
        "duration": v.duration,
        "recovery_seconds": num(rec.get("seconds")),
        "recovery_within": num(rec.get("within")),
        "recovered": rec.get("passed") if rec else None,
        "burnt": None if b["burnt"] is None or b["burnt"] == float("inf") else b["burnt"],
        "failed": b["failed"],
        "requests": b["requests"],
        "reason": (v.reasons or [""])[0],
        "has_report": (run_dir / "report.html").exists(),
    }


def _experiment_key(path: str) -> str:
    """The same experiment file run as 'experiments/x.yaml' and '/repo/experiments/x.yaml'
    (pytest passes absolute paths) is one experiment: relative to the working directory
    when it is below it."""
    if not path:
        return ""
    p = Path(path)
    if p.is_absolute():
        try:
            return str(p.resolve().relative_to(Path.cwd().resolve()))
        except (ValueError, OSError):
            return str(p)
    return str(Path(*p.parts)) if p.parts else path


def collect(reports_dir: Path) -> list[dict[str, Any]]:
    runs = []
    for d in sorted(p for p in reports_dir.iterdir() if p.is_dir()):
        jp = d / "journal.json"
        if not jp.is_file():
            continue
        try:
            journal = json.loads(jp.read_text())
            if isinstance(journal, dict) and journal.get("kind") == "drill":
                continue  # restore drills have their own section (harness.report.drill)
            runs.append(run_summary(journal, d))
        except Exception as exc:  # noqa: BLE001 - one bad journal must not hide the others
            log.warning("skipping %s in the index: %s", jp, exc)
            runs.append({"dir": d.name, "run_id": d.name, "experiment": "(unreadable journal)", "title": str(exc),
                         "status": "unknown", "started_at": 0.0, "duration": 0.0, "recovery_seconds": None,
                         "recovery_within": None, "recovered": None, "burnt": None, "failed": 0, "requests": 0, "reason": "",
                         "has_report": (d / "report.html").exists()})
    runs.sort(key=lambda r: (r["started_at"] or 0, r["dir"]), reverse=True)
    return runs


def _recovery(r: dict) -> str:
    if r["recovery_seconds"] is not None:
        return fmt_duration(r["recovery_seconds"])
    return "not recovered" if r.get("recovered") is False else "—"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _trend(runs: list[dict], key: str, title: str, ytitle: str, scale: float = 1.0,
           ref: tuple[float, str] | None = None) -> go.Figure | None:
    by: dict[str, list[dict]] = {}
    for r in sorted(runs, key=lambda r: r["started_at"] or 0):
        if r.get(key) is not None and r["started_at"]:
            by.setdefault(r["experiment"], []).append(r)
    if not by:
        return None
    fig = go.Figure()
    for i, (exp, rs) in enumerate(by.items()):
        fig.add_trace(go.Scatter(
            x=[_iso(r["started_at"]) for r in rs], y=[r[key] * scale for r in rs], name=exp, mode="lines+markers",
            line=dict(color=charts.PALETTE[i % len(charts.PALETTE)], width=1.5),
            marker=dict(size=10, color=[STATUS_COLOURS.get(r["status"], "#8c959f") for r in rs],
                        line=dict(color=charts.PALETTE[i % len(charts.PALETTE)], width=2)),
            customdata=[[r["run_id"], STATUS_WORDS.get(r["status"], r["status"])] for r in rs],
            hovertemplate="%{customdata[0]}<br>%{customdata[1]}: %{y:.3g}" + ytitle + "<extra>" + esc(exp) + "</extra>"))
    ts = [r["started_at"] for rs in by.values() for r in rs]
    pad = max((max(ts) - min(ts)) * 0.05, 600.0)
    fig.update_xaxes(range=[_iso(min(ts) - pad), _iso(max(ts) + pad)])
    if ref:
        fig.add_shape(type="line", xref="paper", yref="y", x0=0, x1=1, y0=ref[0], y1=ref[0],
                      line=dict(color="#cf222e", width=1.2, dash="dash"))
        fig.add_annotation(x=1, y=ref[0], xref="paper", yref="y", xanchor="right", yanchor="bottom", text=ref[1],
                           showarrow=False, font=dict(size=10, color="#cf222e"))
    fig.update_layout(
        title=dict(text=f"<b>{title}</b>", x=0, xanchor="left", font=dict(size=14)),
        height=290 + 18 * ((len(by) - 1) // 2), margin=dict(l=60, r=20, t=40, b=70 + 18 * ((len(by) - 1) // 2)), plot_bgcolor="white", paper_bgcolor="white",
        xaxis=dict(type="date", gridcolor="#eef0f2", title=None), hovermode="closest",
        yaxis=dict(title=dict(text=ytitle, font=dict(size=11)), rangemode="tozero", gridcolor="#eef0f2"),
        legend=dict(orientation="h", x=0, xanchor="left", y=-0.22, yanchor="top", font=dict(size=11)),
        font=dict(family="-apple-system, Segoe UI, Helvetica, Arial, sans-serif", size=12, color="#1f2328"))
    return fig


INDEX_CSS = """
.hero { background:#24292f; color:#fff; padding:20px 28px; border-radius:0 0 10px 10px; }
.hero h1 { margin:0; font-size:22px; } .hero p { margin:6px 0 0; opacity:.85; }
.bar { background:#ffebe9; border-radius:4px; height:10px; width:140px; display:inline-block; vertical-align:middle; overflow:hidden; }
.bar > span { background:#1a7f37; height:100%; display:block; }
.dots a { display:inline-block; width:13px; height:13px; border-radius:3px; margin-right:2px; vertical-align:middle; }
.two { display:grid; grid-template-columns:1fr 1fr; gap:12px; }
@media (max-width: 900px) { .two { grid-template-columns:1fr; } }
"""


def index_html(reports_dir: Path, plotly_js: str) -> str:
    runs = collect(reports_dir)
    exps: dict[str, list[dict]] = {}
    for r in runs:
        exps.setdefault(r["experiment"], []).append(r)
    rows = []
    for exp, rs in sorted(exps.items()):
        n = len(rs)
        ok = sum(1 for r in rs if r["status"] == "passed")
        last = rs[0]
        dots = "".join(
            f'<a href="{esc(r["dir"])}/report.html" title="{esc(r["run_id"])}: {esc(STATUS_WORDS.get(r["status"], r["status"]))}" '
            f'style="background:{STATUS_COLOURS.get(r["status"], "#8c959f")}"></a>' for r in reversed(rs[:20]))
        recs = [r["recovery_seconds"] for r in rs if r["recovery_seconds"] is not None]
        rows.append(
            f'<tr><td><b>{esc(exp)}</b><br><span class="note">{esc(last["title"])}</span></td>'
            f'<td class="num">{ok}/{n} ({ok / n * 100:.0f}%)<br><span class="bar"><span style="width:{ok / n * 100:.0f}%">'
            f'</span></span></td><td class="dots">{dots}</td>'
            f'<td class="num">{esc(fmt_duration(recs[0]) if recs else "—")}'
            f'{" (median " + esc(fmt_duration(sorted(recs)[len(recs) // 2])) + ")" if len(recs) > 1 else ""}</td>'
            f'<td><span class="pill" style="background:{STATUS_COLOURS.get(last["status"], "#8c959f")}">'
            f'{esc(STATUS_WORDS.get(last["status"], last["status"]))}</span> '
            f'<a href="{esc(last["dir"])}/report.html">{esc(fmt_epoch(last["started_at"]))}</a></td></tr>')
    per_exp = ('<section id="experiments"><h2>Pass rate per experiment</h2><table><tr><th>experiment</th>'
               '<th>passed</th><th>history (oldest → newest)</th><th>last recovery</th><th>last run</th></tr>'
               + "".join(rows) + "</table></section>") if rows else ""
    figs = []
    rec = _trend(runs, "recovery_seconds", "Recovery time per run", "s")
    burn = _trend(runs, "burnt", "Error budget burnt per run (requests)", "%", 100.0, (100.0, "whole budget"))
    for cid, fig in (("trend-recovery", rec), ("trend-budget", burn)):
        if fig is not None:
            figs.append(f'<div class="chart">{fig_html(fig, cid)}</div>')
    trends = (f'<section id="trends"><h2>Trends</h2><div class="two">{"".join(figs)}</div>'
              '<p class="note">Marker colour: verdict of the run. Budget burn is the share of the run\'s error budget '
              '(failed requests vs. what the availability objective allows) that the run used.</p></section>') if figs else ""
    run_rows = []
    for r in runs:
        colour = STATUS_COLOURS.get(r["status"], "#8c959f")
        link = f'<a href="{esc(r["dir"])}/report.html">report</a>' if r["has_report"] else "no report"
        run_rows.append(
            f'<tr><td><span class="pill" style="background:{colour}">{esc(STATUS_WORDS.get(r["status"], r["status"]))}</span></td>'
            f'<td class="num">{esc(fmt_epoch(r["started_at"]) if r["started_at"] else "—")}</td>'
            f'<td><b>{esc(r["experiment"])}</b><br><span class="mono">{esc(r["run_id"])}</span></td>'
            f'<td class="num">{esc(fmt_duration(r["duration"]))}</td>'
            f'<td class="num">{esc(_recovery(r))}</td>'
            f'<td class="num">{"—" if r["burnt"] is None else "%.0f%%" % (r["burnt"] * 100)}</td>'
            f'<td>{esc(r["reason"])}</td>'
            f'<td>{link} · <a href="{esc(r["dir"])}/summary.md">md</a> · <a href="{esc(r["dir"])}/journal.json">json</a></td></tr>')
    table = ('<section id="runs"><h2>All runs (newest first)</h2><table><tr><th>verdict</th><th>started</th>'
             '<th>experiment / run</th><th>took</th><th>recovery</th><th>budget burnt</th><th>reason</th><th>files</th></tr>'
             + "".join(run_rows) + "</table></section>") if run_rows else '<section><p class="note">No runs yet.</p></section>'
    n = len(runs)
    ok = sum(1 for r in runs if r["status"] == "passed")
    from harness.report.drill import drill_history_html

    try:
        drills, drill_figs = drill_history_html(reports_dir)
    except Exception as exc:  # noqa: BLE001 - the index must always be written
        log.warning("drill history could not be rendered: %s", exc)
        drills, drill_figs = "", False
    if drills and not runs:
        table = ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Resilience runs · {ok}/{n} passed</title>
<style>{CSS}{INDEX_CSS}</style>
<script type="text/javascript">{plotly_js if figs or drill_figs else ""}</script>
</head><body>
<header class="hero"><h1>Resilience runs</h1><p>{n} run{"s" if n != 1 else ""} of {len(exps)} experiment{"s" if len(exps) != 1 else ""}
 in {esc(reports_dir.resolve())} · {ok} passed · generated {esc(fmt_epoch(datetime.now(timezone.utc).timestamp()))}</p></header>
<main>{per_exp}{trends}{drills}{table}</main></body></html>
"""

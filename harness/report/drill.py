"""Reports of a restore drill: ``report.html`` (one offline file), ``summary.md``, and the
drill history (RTO/RPO per run against the targets) that ``reports/index.html`` shows.

A drill journal has ``"kind": "drill"`` (see harness.drills.run). Like the experiment
report, nothing here raises for a missing field: every part is guarded.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from harness.report import charts
from harness.report.page import CSS, esc, fig_html, guarded
from harness.report.view import STATUS_COLOURS, fmt_duration, fmt_epoch

log = logging.getLogger(__name__)

STATUS_COLOURS_DRILL = {**STATUS_COLOURS, "not-ready": "#9a6700"}
STATUS_WORDS_DRILL = {"passed": "PASSED", "failed": "FAILED", "not-ready": "NOT READY", "interrupted": "INTERRUPTED"}
STEP_COLOURS = {"find-backup": "#8250df", "prepare": "#0969da", "restore": "#bc4c00", "start": "#1a7f37",
                "verify": "#9a6700", "teardown": "#8c959f"}


def is_drill(journal: Any) -> bool:
    return isinstance(journal, dict) and journal.get("kind") == "drill"


def _d(x: Any) -> dict:
    return x if isinstance(x, dict) else {}


def _l(x: Any) -> list:
    return x if isinstance(x, list) else []


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


# -- the run's page --------------------------------------------------------------------------
def _banner(j: dict) -> str:
    status = j.get("status", "unknown")
    colour = STATUS_COLOURS_DRILL.get(status, "#57606a")
    drill = _d(j.get("drill"))
    reasons = "".join(f'<li class="bad"><span class="mark">✘</span>{esc(r)}</li>' for r in _l(j.get("reasons")))
    rto, rpo = _d(j.get("rto")), _d(j.get("rpo"))
    head = (f"RTO {fmt_duration(rto.get('seconds')) if rto.get('seconds') is not None else 'not reached'} "
            f"(target {esc(rto.get('target_text') or '—')}) · RPO "
            f"{fmt_duration(rpo.get('seconds')) if rpo.get('seconds') is not None else 'not measured'} "
            f"(target {esc(rpo.get('target_text') or '—')})")
    return (f'<header class="banner" style="background:{colour}"><div class="top"><span class="badge">'
            f'{esc(STATUS_WORDS_DRILL.get(status, status.upper()))}</span><h1>{esc(drill.get("title", "drill"))}</h1></div>'
            f'<div class="headline">{head}</div><ul class="why">{reasons}</ul>'
            f'<div class="meta">restore drill <span class="mono">{esc(j.get("run_id"))}</span> · '
            f'{esc(drill.get("path", ""))} · driver {esc(drill.get("driver", ""))} · started '
            f'{esc(fmt_epoch(j.get("started_at")))}</div></header>')


def _tile(k: str, v: str, s: str, ok: bool | None) -> str:
    cls = "" if ok is None else ("ok" if ok else "bad")
    return f'<div class="tile {cls}"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div><div class="s">{esc(s)}</div></div>'


def _tiles(j: dict) -> str:
    rto, rpo, b = _d(j.get("rto")), _d(j.get("rpo")), _d(j.get("backup"))
    slo = [c for c in _l(j.get("checks")) if _d(c).get("kind") == "source-slo"]
    integ = [c for c in _l(j.get("checks")) if _d(c).get("kind") not in ("source-slo", "rto", "rpo")]
    tiles = [
        _tile("RTO", fmt_duration(rto.get("seconds")) if rto.get("seconds") is not None else "not reached",
              f"target {rto.get('target_text') or '—'} ({rto.get('target_source', '')})", rto.get("passed")),
        _tile("RPO", fmt_duration(rpo.get("seconds")) if rpo.get("seconds") is not None else "not measured",
              f"target {rpo.get('target_text') or '—'} ({rpo.get('target_source', '')})", rpo.get("passed")),
        _tile("integrity checks", f"{sum(1 for c in integ if c.get('passed'))}/{len(integ)}", "passed",
              all(c.get("passed") for c in integ) if integ else None),
        _tile("source SLOs", f"{sum(1 for c in slo if c.get('passed'))}/{len(slo)}", "held during the drill",
              all(c.get("passed") for c in slo) if slo else None),
        _tile("backup", str(b.get("label") or "none"), str(b.get("type") or b.get("reason") or ""),
              bool(b.get("label")) if b else False),
    ]
    return f'<div class="tiles">{"".join(tiles)}</div>'


def _timeline_fig(j: dict) -> go.Figure | None:
    steps = [s for s in _l(j.get("steps")) if _d(s).get("seconds") is not None]
    if not steps:
        return None
    fig = go.Figure()
    for s in reversed(steps):
        fig.add_trace(go.Bar(
            y=[s.get("label", s.get("name"))], x=[s["seconds"]], base=[s.get("offset", 0.0)], orientation="h",
            marker=dict(color=STEP_COLOURS.get(s.get("name"), "#57606a") if s.get("ok") else "#cf222e"),
            hovertemplate=f"{esc(s.get('name'))}: +%{{base:.2f}}s for %{{x:.2f}}s<extra></extra>", showlegend=False))
    rto = _d(j.get("rto"))
    for val, label, colour in ((rto.get("seconds"), "RTO", "#1a7f37"), (rto.get("target"), "RTO target", "#cf222e")):
        if val is not None and (label != "RTO target" or val < 10 * max(s.get("offset", 0) + s["seconds"] for s in steps)):
            fig.add_vline(x=val, line=dict(color=colour, dash="dash", width=1.2))
            fig.add_annotation(x=val, y=1, yref="paper", text=label, showarrow=False, yanchor="bottom",
                               font=dict(size=10, color=colour))
    fig.update_layout(height=70 + 34 * len(steps), margin=dict(l=230, r=20, t=24, b=36), plot_bgcolor="white",
                      paper_bgcolor="white", barmode="overlay",
                      xaxis=dict(title=dict(text="seconds since the drill started", font=dict(size=11)),
                                 gridcolor="#eef0f2", rangemode="tozero"),
                      font=dict(family="-apple-system, Segoe UI, Helvetica, Arial, sans-serif", size=12))
    return fig


def _timeline(j: dict) -> str:
    rows = []
    for s in _l(j.get("steps")):
        s = _d(s)
        ok = s.get("ok")
        rows.append(f'<tr class="{"" if ok else "bad"}"><td>{esc(s.get("label", s.get("name")))}</td>'
                    f'<td class="num">+{s.get("offset", 0):.2f} s</td><td class="num">{esc(fmt_duration(s.get("seconds")))}</td>'
                    f'<td>{"✔" if ok else "✘"}</td><td class="mono">{esc(s.get("detail", ""))}</td></tr>')
    fig = _timeline_fig(j)
    chart = f'<div class="chart">{fig_html(fig, "drill-timeline")}</div>' if fig is not None else ""
    rto = _d(j.get("rto"))
    note = ("RTO = drill start to the restored service answering with every check passed (find the backup → "
            "prepare → restore → start → verify, seed 004's DR steps); the teardown is not part of it.")
    if rto.get("detail"):
        note += " " + rto["detail"] + "."
    return (f'<section id="timeline"><h2>Timeline</h2>{chart}<table><tr><th>step</th><th>at</th><th>took</th><th></th>'
            f'<th>detail</th></tr>{"".join(rows)}</table><p class="note">{esc(note)}</p></section>')


def _checks(j: dict) -> str:
    rows = []
    for c in _l(j.get("checks")):
        c = _d(c)
        ok = c.get("passed")
        mark = '<span class="pill ok">✔ ok</span>' if ok else '<span class="pill bad">✘ FAILED</span>'
        rows.append(f'<tr class="{"" if ok else "bad"}"><td>{mark}</td>'
                    f'<td>{esc(c.get("kind"))}</td><td><b>{esc(c.get("name"))}</b></td><td>{esc(c.get("detail"))}</td></tr>')
    return (f'<section id="checks"><h2>Checks</h2><table><tr><th></th><th>kind</th><th>check</th><th>measured</th></tr>'
            f'{"".join(rows)}</table></section>')


def _rpo(j: dict) -> str:
    rpo, pitr = _d(j.get("rpo")), _d(j.get("pitr"))

    def clock(t):
        return "—" if t is None else _iso(float(t)) + " UTC"

    items = [("RPO", fmt_duration(rpo.get("seconds"))), ("target", f"{rpo.get('target_text', '—')} ({rpo.get('target_source', '')})"),
             ("chosen point", clock(rpo.get("point"))), ("newest acknowledged write at the point", clock(rpo.get("newest_acknowledged"))),
             ("newest write in the restored copy", clock(rpo.get("newest_restored"))), ("measured from", rpo.get("how", "")),
             ("restore point (last replayed transaction)", clock(pitr.get("restore_point")))]
    for table, t in _d(pitr.get("tables")).items():
        t = _d(t)
        items.append((f"point in time, {table}", f"{t.get('rows_before_restored')} rows before it restored "
                      f"({t.get('rows_before_source')} on the source), {t.get('rows_after_restored')} after it "
                      f"(the source has {t.get('rows_after_source')})"))
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items)
    return (f'<section id="rpo"><h2>RPO</h2><dl class="kv">{dl}</dl><p class="note">RPO = the newest acknowledged '
            'write on the source at the chosen point (the drill start, or the point in time) minus the newest one '
            'present in the restored copy.</p></section>')


def _load_fig(j: dict) -> go.Figure | None:
    series = [r for r in _l(_d(j.get("load")).get("series")) if isinstance(r, dict) and r.get("t")]
    if not series:
        return None
    xs = [_iso(r["t"]) for r in series]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=[r.get("rps") for r in series], name="requests/s", line=dict(color=charts.PALETTE[0])))
    fig.add_trace(go.Scatter(x=xs, y=[r.get("errors") for r in series], name="errors/s", line=dict(color="#cf222e")))
    fig.add_trace(go.Scatter(x=xs, y=[r.get("p95_ms") for r in series], name="p95 ms", yaxis="y2",
                             line=dict(color=charts.PALETTE[2], dash="dot")))
    for s in _l(j.get("steps")):
        s = _d(s)
        if s.get("start") and s.get("end"):
            fig.add_vrect(x0=_iso(s["start"]), x1=_iso(s["end"]), fillcolor=STEP_COLOURS.get(s.get("name"), "#8c959f"),
                          opacity=0.10, line_width=0, annotation_text=s.get("name"), annotation_position="top left",
                          annotation_font_size=9)
    fig.update_layout(height=300, margin=dict(l=60, r=60, t=30, b=40), plot_bgcolor="white", paper_bgcolor="white",
                      xaxis=dict(type="date", gridcolor="#eef0f2"), yaxis=dict(title="per second", rangemode="tozero", gridcolor="#eef0f2"),
                      yaxis2=dict(title="p95 ms", overlaying="y", side="right", rangemode="tozero"),
                      legend=dict(orientation="h", y=-0.2),
                      font=dict(family="-apple-system, Segoe UI, Helvetica, Arial, sans-serif", size=12))
    return fig


def _source(j: dict) -> str:
    fig = _load_fig(j)
    slo = _d(j.get("source_slo"))
    objs = ", ".join(f"{k} {v}" for k, v in _d(slo.get("objectives")).items()) or "none"
    chart = f'<div class="chart">{fig_html(fig, "drill-load")}</div>' if fig is not None else \
        '<p class="note">No load ran on the source during this drill.</p>'
    return (f'<section id="source"><h2>The source under load during the drill</h2>{chart}<p class="note">'
            f'{esc(_d(j.get("load")).get("users", 0))} Locust users; objectives {esc(objs)} ({esc(slo.get("source", ""))}), '
            'judged over the whole drill (drill start to the end of the teardown).</p></section>')


def _backup(j: dict) -> str:
    b = _d(j.get("backup"))
    items = [(k, b.get(k)) for k in ("label", "type", "reason", "candidates", "wal_start", "wal_stop", "prior") if b.get(k) is not None]
    if b.get("start"):
        items += [("started", fmt_epoch(b["start"])), ("finished", fmt_epoch(b.get("stop")))]
    items.append(("restore command", j.get("restore_command") or "—"))
    items.append(("left behind", ", ".join(_l(j.get("left_behind"))) or "nothing"))
    dl = "".join(f"<dt>{esc(k)}</dt><dd class='mono'>{esc(v)}</dd>" for k, v in items)
    return f'<section id="backup"><h2>Backup and restore</h2><dl class="kv">{dl}</dl></section>'


def _raw(j: dict) -> str:
    ev = "".join(f"<tr><td class='num'>{esc(_iso(e['t'])[11:])}</td><td>{esc(e.get('kind'))}</td><td>{esc(e.get('text'))}</td></tr>"
                 for e in _l(j.get("events")) if isinstance(e, dict) and e.get("t"))
    return (f'<section id="events"><details><summary>Events ({len(_l(j.get("events")))})</summary><table>{ev}</table>'
            '</details></section>')


def drill_report_html(j: dict, plotly_js: str) -> str:
    parts = [guarded(t, lambda f=f: f(j)) for t, f in (("Timeline", _timeline), ("Checks", _checks), ("RPO", _rpo),
                                                        ("Source", _source), ("Backup", _backup), ("Events", _raw))]
    title = _d(j.get("drill")).get("title", "drill")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(STATUS_WORDS_DRILL.get(j.get("status"), j.get("status")))} · drill · {esc(title)}</title>
<style>{CSS}</style><script type="text/javascript">{plotly_js}</script></head>
<body>{guarded("banner", lambda: _banner(j))}<main>{guarded("tiles", lambda: _tiles(j))}{"".join(parts)}
<footer>Restore drill report written by the resilience harness · journal: journal.json</footer></main></body></html>
"""


def drill_summary_md(j: dict) -> str:
    status = j.get("status", "unknown")
    drill = _d(j.get("drill"))
    rto, rpo = _d(j.get("rto")), _d(j.get("rpo"))
    emoji = {"passed": "✅", "failed": "❌", "interrupted": "⏹️", "not-ready": "⚠️"}.get(status, "❔")
    out = [f"## {emoji} Drill {STATUS_WORDS_DRILL.get(status, status)}: {drill.get('title', '')}", "",
           f"`{drill.get('path', '')}` · driver {drill.get('driver', '')} · run `{j.get('run_id')}`", ""]
    for r in _l(j.get("reasons")):
        out.append(f"- **{r}**")
    out += ["", "| | measured | target | |", "|---|---|---|---|",
            f"| RTO | {fmt_duration(rto.get('seconds')) if rto.get('seconds') is not None else 'not reached'} | "
            f"{rto.get('target_text', '—')} ({rto.get('target_source', '')}) | {'✅' if rto.get('passed') else '❌'} |",
            f"| RPO | {fmt_duration(rpo.get('seconds')) if rpo.get('seconds') is not None else 'not measured'} | "
            f"{rpo.get('target_text', '—')} ({rpo.get('target_source', '')}) | {'✅' if rpo.get('passed') else '❌'} |",
            "", "| step | took | | detail |", "|---|---|---|---|"]
    for s in _l(j.get("steps")):
        s = _d(s)
        detail = str(s.get("detail", "")).replace("|", "\\|")[:200]
        out.append(f"| {s.get('label', s.get('name'))} | {fmt_duration(s.get('seconds'))} | {'✅' if s.get('ok') else '❌'} | {detail} |")
    out += ["", "| check | | measured |", "|---|---|---|"]
    for c in _l(j.get("checks")):
        c = _d(c)
        out.append(f"| {c.get('name')} | {'✅' if c.get('passed') else '❌'} | {str(c.get('detail', '')).replace('|', chr(92) + '|')[:300]} |")
    out += ["", "Report: `report.html` · journal: `journal.json`", ""]
    return "\n".join(out)


def write_drill_reports(journal: dict, out_dir: str | Path) -> Path:
    """``report.html`` + ``summary.md`` in ``out_dir``, then the index of its parent."""
    from harness.report.render import REPORT_NAME, SUMMARY_NAME, _write, plotly_js, write_index

    out_dir = Path(out_dir)
    html = out_dir / REPORT_NAME
    _write(html, drill_report_html(journal, plotly_js()))
    try:
        _write(out_dir / SUMMARY_NAME, drill_summary_md(journal))
    except Exception as exc:  # noqa: BLE001
        log.warning("could not write %s: %s", out_dir / SUMMARY_NAME, exc)
    try:
        write_index(out_dir.parent)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not rebuild the index of %s: %s", out_dir.parent, exc)
    return html


# -- history (reports/index.html) -----------------------------------------------------------------
def drill_runs(reports_dir: Path) -> list[dict[str, Any]]:
    runs = []
    for d in sorted(p for p in Path(reports_dir).iterdir() if p.is_dir()):
        jp = d / "journal.json"
        if not jp.is_file():
            continue
        try:
            j = json.loads(jp.read_text())
        except (OSError, ValueError):
            continue
        if not is_drill(j):
            continue
        rto, rpo = _d(j.get("rto")), _d(j.get("rpo"))
        runs.append({"dir": d.name, "run_id": j.get("run_id", d.name), "drill": _d(j.get("drill")).get("path", ""),
                     "title": _d(j.get("drill")).get("title", ""), "status": j.get("status", "unknown"),
                     "started_at": j.get("started_at") or 0.0, "rto": rto.get("seconds"), "rto_target": rto.get("target"),
                     "rpo": rpo.get("seconds"), "rpo_target": rpo.get("target"),
                     "backup": _d(j.get("backup")).get("label"), "reason": (_l(j.get("reasons")) or [""])[0],
                     "has_report": (d / "report.html").exists()})
    runs.sort(key=lambda r: (r["started_at"], r["dir"]), reverse=True)
    return runs


def _trend(runs: list[dict], key: str, title: str) -> go.Figure | None:
    by: dict[str, list[dict]] = {}
    for r in sorted(runs, key=lambda r: r["started_at"]):
        if r.get(key) is not None:
            by.setdefault(r["drill"], []).append(r)
    if not by:
        return None
    fig = go.Figure()
    for i, (name, rs) in enumerate(by.items()):
        colour = charts.PALETTE[i % len(charts.PALETTE)]
        fig.add_trace(go.Scatter(
            x=[_iso(r["started_at"]) for r in rs], y=[r[key] for r in rs], name=name, mode="lines+markers",
            line=dict(color=colour, width=1.5),
            marker=dict(size=10, color=[STATUS_COLOURS_DRILL.get(r["status"], "#8c959f") for r in rs]),
            customdata=[[r["run_id"], r["status"]] for r in rs],
            hovertemplate="%{customdata[0]}<br>%{customdata[1]}: %{y:.3g} s<extra>" + esc(name) + "</extra>"))
        targets = [r.get(key + "_target") for r in rs if r.get(key + "_target") is not None]
        if targets:
            fig.add_trace(go.Scatter(x=[_iso(r["started_at"]) for r in rs], y=[r.get(key + "_target") for r in rs],
                                     name=f"{name} target", mode="lines", line=dict(color="#cf222e", dash="dash", width=1)))
    ymax = max(r[key] for rs in by.values() for r in rs)
    fig.update_layout(title=dict(text=f"<b>{title}</b>", x=0, font=dict(size=14)), height=290,
                      margin=dict(l=60, r=20, t=40, b=70), plot_bgcolor="white", paper_bgcolor="white",
                      xaxis=dict(type="date", gridcolor="#eef0f2"),
                      yaxis=dict(title="s", gridcolor="#eef0f2", range=[0, max(ymax * 1.3, 1.0)]),
                      legend=dict(orientation="h", y=-0.22, font=dict(size=11)),
                      font=dict(family="-apple-system, Segoe UI, Helvetica, Arial, sans-serif", size=12))
    return fig


def drill_history_html(reports_dir: Path) -> tuple[str, bool]:
    """The index's drill section (and whether it has charts that need plotly.js)."""
    runs = drill_runs(Path(reports_dir))
    if not runs:
        return "", False
    rows = []
    for r in runs:
        colour = STATUS_COLOURS_DRILL.get(r["status"], "#8c959f")

        def vs(v, t):
            if v is None:
                return "—"
            mark = "" if t is None else (" ✔" if v <= t else " ✘")
            return f"{fmt_duration(v)} / {fmt_duration(t) if t is not None else '—'}{mark}"

        link = f'<a href="{esc(r["dir"])}/report.html">report</a>' if r["has_report"] else "no report"
        rows.append(f'<tr><td><span class="pill" style="background:{colour}">{esc(STATUS_WORDS_DRILL.get(r["status"], r["status"]))}'
                    f'</span></td><td class="num">{esc(fmt_epoch(r["started_at"]))}</td><td><b>{esc(r["drill"])}</b><br>'
                    f'<span class="mono">{esc(r["run_id"])}</span></td><td class="num">{esc(vs(r["rto"], r["rto_target"]))}</td>'
                    f'<td class="num">{esc(vs(r["rpo"], r["rpo_target"]))}</td><td class="mono">{esc(r["backup"] or "—")}</td>'
                    f'<td>{esc(r["reason"])}</td><td>{link}</td></tr>')
    figs = [f for f in (_trend(runs, "rto", "Drill RTO per run (dashed: target)"),
                        _trend(runs, "rpo", "Drill RPO per run (dashed: target)")) if f is not None]
    charts_html = "".join(f'<div class="chart">{fig_html(f, f"drill-trend-{i}")}</div>' for i, f in enumerate(figs))
    html = (f'<section id="drills"><h2>Restore drills</h2><div class="two">{charts_html}</div>'
            '<table><tr><th>verdict</th><th>started</th><th>drill / run</th><th>RTO / target</th><th>RPO / target</th>'
            f'<th>backup</th><th>reason</th><th>files</th></tr>{"".join(rows)}</table></section>')
    return html, bool(figs)

"""The HTML of one run's report (a single file: CSS, plotly.js and data inline)."""
from __future__ import annotations

import html
import logging
from typing import Any, Callable

import plotly.graph_objects as go

from harness.report import charts, charts_system
from harness.report.damage import gauges_table
from harness.report.view import (
    PHASE_NAMES, RunView, as_dict, compact, dicts, fmt_duration, fmt_epoch,
    fmt_int, fmt_measured, fmt_pct, measure_label, num, pretty_key,
)

log = logging.getLogger(__name__)


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x))


CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --soft:#f6f8fa; --ok:#1a7f37; --bad:#cf222e; }
* { box-sizing: border-box; }
body { margin:0; font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif; color:var(--fg);
       background:#f6f8fa; font-size:14px; line-height:1.45; }
main { max-width:1240px; margin:0 auto; padding:0 20px 40px; }
a { color:#0969da; }
.banner { color:#fff; padding:22px 28px 18px; border-radius:0 0 10px 10px; }
.banner .top { display:flex; align-items:baseline; gap:16px; flex-wrap:wrap; }
.badge { font-weight:800; font-size:30px; letter-spacing:.04em; background:rgba(0,0,0,.18); padding:2px 14px;
         border-radius:8px; white-space:nowrap; }
.banner h1 { font-size:22px; margin:0; font-weight:600; }
.banner .headline { font-size:17px; margin:10px 0 6px; font-weight:500; }
.banner ul.why { margin:6px 0 4px; padding:0; list-style:none; }
.banner ul.why li { margin:3px 0; padding:4px 10px; border-radius:6px; background:rgba(255,255,255,.12); font-size:15px; }
.banner ul.why li.bad { background:rgba(255,255,255,.95); color:#82071e; font-weight:600; font-size:16px; }
.banner ul.why li .mark { display:inline-block; width:1.3em; font-weight:800; }
.banner .meta { margin-top:10px; font-size:12.5px; opacity:.92; }
.banner .meta a { color:#fff; }
.tiles { display:grid; grid-template-columns:repeat(auto-fit,minmax(150px,1fr)); gap:10px; margin:16px 0 6px; }
.tile { background:#fff; border:1px solid var(--line); border-left:5px solid #8c959f; border-radius:8px; padding:9px 12px; }
.tile.ok { border-left-color:var(--ok); } .tile.bad { border-left-color:var(--bad); }
.tile .k { font-size:12px; color:var(--muted); text-transform:uppercase; letter-spacing:.03em; }
.tile .v { font-size:22px; font-weight:700; margin-top:2px; }
.tile .s { font-size:12px; color:var(--muted); }
section { background:#fff; border:1px solid var(--line); border-radius:8px; margin:14px 0; padding:12px 16px; }
section h2 { font-size:17px; margin:2px 0 8px; }
section p.note { color:var(--muted); margin:4px 0 8px; font-size:13px; }
.chart { margin:2px 0 6px; border-bottom:1px solid #eef0f2; }
.chart:last-child { border-bottom:0; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid #eef0f2; vertical-align:top; }
th { background:var(--soft); font-weight:600; }
td.num { font-variant-numeric:tabular-nums; white-space:nowrap; }
tr.bad td { background:#ffebe9; }
.pill { display:inline-block; padding:0 8px; border-radius:10px; font-size:12px; font-weight:700; color:#fff; white-space:nowrap; }
.pill.ok { background:var(--ok); } .pill.bad { background:var(--bad); } .pill.na { background:#8c959f; }
dl.kv { display:grid; grid-template-columns:max-content 1fr; gap:1px 12px; margin:0; font-size:12.5px; }
dl.kv dt { color:var(--muted); } dl.kv dd { margin:0; font-variant-numeric:tabular-nums; }
details { margin:6px 0; } summary { cursor:pointer; font-weight:600; }
code, .mono { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12px; }
.legend-note { font-size:12px; color:var(--muted); }
.swatch { display:inline-block; width:12px; height:12px; vertical-align:-2px; border-radius:2px; margin-right:4px; }
footer { color:var(--muted); font-size:12px; margin-top:18px; }
"""

LINK_JS = """
(function(){
  var ids = %s, full = %s, busy = false;
  function sync(src, upd){
    if (busy) return; busy = true;
    var all = ids.filter(function(o){ return o !== src && document.getElementById(o); })
                 .map(function(o){ return Plotly.relayout(o, upd); });
    Promise.all(all).then(function(){ busy = false; }, function(){ busy = false; });
  }
  window.addEventListener('load', function(){
    ids.forEach(function(id){
      var gd = document.getElementById(id);
      if (!gd || !gd.on) return;
      gd.on('plotly_relayout', function(ev){
        if (ev['xaxis.range[0]'] !== undefined) sync(id, {'xaxis.range': [ev['xaxis.range[0]'], ev['xaxis.range[1]']]});
        else if (ev['xaxis.range']) sync(id, {'xaxis.range': ev['xaxis.range']});
        else if (ev['xaxis.autorange']) sync(id, {'xaxis.range': full});
      });
    });
  });
})();
"""


def fig_html(fig: go.Figure, div_id: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=charts.CONFIG,
                       default_width="100%", default_height=f"{fig.layout.height or 230}px")


def guarded(title: str, build: Callable[[], str]) -> str:
    """A section that fails to render says so instead of breaking the report."""
    try:
        return build()
    except Exception as exc:  # noqa: BLE001 - the report must always be written
        log.warning("report section %r could not be rendered: %s", title, exc, exc_info=True)
        return f'<section><h2>{esc(title)}</h2><p class="note">This part could not be rendered: {esc(exc)}</p></section>'


def pill(ok: Any, yes: str = "held", no: str = "BROKEN") -> str:
    if ok is None:
        return '<span class="pill na">n/a</span>'
    return f'<span class="pill ok">✔ {yes}</span>' if ok else f'<span class="pill bad">✘ {no}</span>'


def kv(measured: dict, view: RunView) -> str:
    if not measured:
        return ""
    items = "".join(f"<dt>{esc(pretty_key(k))}</dt><dd>{esc(fmt_measured(k, v, view))}</dd>" for k, v in measured.items())
    return f'<dl class="kv">{items}</dl>'


# -- the parts --------------------------------------------------------------------------------
def banner(view: RunView) -> str:
    items = []
    for text, ok in view.why():
        cls = "bad" if ok is False else ""
        mark = "✘" if ok is False else ("✔" if ok else "•")
        items.append(f'<li class="{cls}"><span class="mark">{mark}</span>{esc(text)}</li>')
    why = f'<ul class="why" id="why">{"".join(items)}</ul>' if items else ""
    load = view.load or {}
    load_txt = ""
    if load:
        load_txt = f" · load {esc(load.get('users'))} users ({esc(load.get('locustfile'))}) on {esc(load.get('host'))}"
    return f"""
<header class="banner verdict-{esc(view.status)}" id="verdict" style="background:{view.colour}">
  <div class="top"><span class="badge" id="verdict-word">{esc(view.word)}</span><h1>{esc(view.title)}</h1></div>
  <div class="headline" id="headline">{esc(view.headline())}</div>
  {why}
  <div class="meta">{esc(view.experiment)} · run <b>{esc(view.run_id)}</b> · started {esc(fmt_epoch(view.started_at))}
   · took {esc(fmt_duration(view.duration))} · target {esc(view.target_desc)}{load_txt}
   · <a href="summary.md">summary.md</a> · <a href="journal.json">journal.json</a> · <a href="../index.html">all runs</a></div>
</header>"""


def tiles(view: RunView) -> str:
    out = []

    def tile(k: str, v: str, s: str = "", ok: bool | None = None) -> None:
        cls = "" if ok is None else ("ok" if ok else "bad")
        out.append(f'<div class="tile {cls}"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div>'
                   f'<div class="s">{esc(s)}</div></div>')

    windows = view.fault_windows()
    uf = [s for s in view.slos if s.get("phase") == "under-fault"]
    av = next((s for s in uf if str(s.get("sli")).startswith("availability")), None)
    worst = view.worst_second(windows) if windows else view.worst_second()
    if av is not None:
        tile("Availability under fault", str(av.get("rendered") or fmt_pct(num(av.get("observed")))),
             f"objective {av.get('objective')}" + (f" · worst second {fmt_pct(worst['availability'])}"
                                                    if worst["availability"] is not None else ""), bool(av.get("passed")))
    elif windows:
        req, fail, _ = view.client_totals(windows)
        obj = view.availability_objective()
        if req:
            tile("Availability under fault", fmt_pct(1 - fail / req), f"{fmt_int(fail)} of {fmt_int(req)} requests failed",
                 None if obj is None else (1 - fail / req) >= obj)
    lat = next((s for s in uf if str(s.get("sli")).startswith("latency")), None)
    if lat is not None:
        tile(f"{str(lat.get('sli')).replace('latency_', '')} latency under fault", str(lat.get("rendered") or "—"),
             f"objective {lat.get('objective')}" + (f" · worst second {worst['p99_ms']:.0f} ms p99"
                                                    if worst["p99_ms"] is not None else ""), bool(lat.get("passed")))
    elif worst["p99_ms"] is not None:
        p99_obj = view.latency_objectives().get("p99")
        tile("Worst p99 (1 s)", f"{worst['p99_ms']:.0f} ms",
             f"at +{worst['p99_at']:.0f}s" + (f" · objective < {p99_obj * 1000:g} ms" if p99_obj else ""),
             None if p99_obj is None else worst["p99_ms"] < p99_obj * 1000)
    rec = view.recovery
    if rec:
        secs = num(rec.get("seconds"))
        tile("Recovery", fmt_duration(secs) if secs is not None else ("not recovered" if rec.get("passed") is False else "—"),
             f"after the last revert · allowed {fmt_duration(num(rec.get('within')))}",
             bool(rec.get("passed")) if rec.get("passed") is not None else None)
    b = view.budget()
    if b["burnt"] is not None:
        burnt = b["burnt"]
        tile("Error budget burnt", "∞" if burnt == float("inf") else f"{burnt * 100:.0f}%",
             f"{fmt_int(b['failed'])} failed of {fmt_int(b['allowed'])} allowed requests", burnt <= 1.0)
    elif b["requests"]:
        tile("Failed requests", fmt_int(b["failed"]), f"of {fmt_int(b['requests'])} (no availability objective)")
    for kind, key, value, passed in view.headline_measures():
        if key == "recovery_seconds" and rec:
            continue
        tile(measure_label(key), fmt_measured(key, value, view), kind, bool(passed) if passed is not None else None)
    if view.checks:
        met = sum(1 for c in view.checks if c.get("passed"))
        failed = [str(c.get("kind")) for c in view.checks if not c.get("passed")]
        tile("Expectations met", f"{met} / {len(view.checks)}",
             ("not met: " + ", ".join(failed)) if failed else ", ".join(str(c.get("kind")) for c in view.checks),
             not failed)
    if windows:
        tile("Faults", str(len(windows)), "; ".join(f"{w.label} {fmt_duration(w.end - w.start)}" for w in windows)[:90],
             all(w.reverted for w in windows) if view.status != "passed" else None)
    if view.abort:
        at = view.rel(view.abort.get("at"))
        tile("Aborted at", f"+{at:.1f}s" if at is not None else "—", str(view.abort.get("condition") or ""), False)
    return f'<div class="tiles" id="tiles">{"".join(out)}</div>' if out else ""


def charts_sections(view: RunView) -> tuple[str, list[str]]:
    figs = charts.all_time_charts(view)
    ids = [cid for cid, _, _ in figs]
    by: dict[str, list[str]] = {}
    for cid, section, fig in figs:
        try:
            by.setdefault(section, []).append(f'<div class="chart" id="wrap-{cid}">{fig_html(fig, cid)}</div>')
        except Exception as exc:  # noqa: BLE001
            log.warning("chart %s could not be drawn: %s", cid, exc)
    legend = ('<p class="legend-note"><span class="swatch" style="background:rgba(207,34,46,.25)"></span>fault active'
              ' &nbsp; <span style="color:#cf222e">┆</span> abort &nbsp; <span style="color:#1a7f37">┆</span>'
              ' steady state again after the revert &nbsp; · drag to zoom (all charts follow), double-click to reset</p>')
    out = []
    if by.get("overview"):
        out.append(f'<section id="overview"><h2>Timeline</h2>{legend}{"".join(by["overview"])}</section>')
    if by.get("users"):
        out.append('<section id="users"><h2>What the users saw</h2><p class="note">Client side: every request the '
                   'load generator (Locust) sent, per second.</p>' + "".join(by["users"]) + "</section>")
    if by.get("system"):
        out.append('<section id="system"><h2>What the system did</h2><p class="note">Samples of the target '
                   '(replicas, resources, roles) and server-side SLIs from Prometheus.</p>'
                   + "".join(by["system"]) + "</section>")
    return "".join(out), ids


def alerts_section(view: RunView) -> str:
    if not view.has_alerts():
        return ('<section id="alerts"><h2>Alerts</h2><p class="note">This experiment checks no alert, and no alert '
                'event was recorded.</p></section>')
    fig = charts_system.alert_timeline(view)
    chart = f'<div class="chart">{fig_html(fig, "chart-alerts")}</div>' if fig is not None else ""
    rows = []
    for c in view.alert_checks():
        rows.append(f'<tr class="{"" if c.get("passed") else "bad"}"><td>{esc(c.get("kind"))}</td>'
                    f'<td>{pill(c.get("passed"), "met", "NOT MET")}</td><td>{esc(c.get("summary"))}</td>'
                    f'<td>{gauges_table(as_dict(c.get("measured"))) or kv(as_dict(c.get("measured")), view)}</td></tr>')
    for e in view.alert_events():
        extra = {k: v for k, v in e.items() if k not in ("t", "kind", "text")}
        rows.append(f'<tr><td>{esc(e.get("kind"))}</td><td class="num">+{view.rel(e.get("t")):.1f}s</td>'
                    f'<td>{esc(e.get("text"))}</td><td>{kv(extra, view)}</td></tr>')
    table = ('<table><tr><th>what</th><th>result / when</th><th>summary</th><th>measured</th></tr>'
             + "".join(rows) + "</table>")
    return f'<section id="alerts"><h2>Alerts</h2>{chart}{table}</section>'


def slo_section(view: RunView) -> str:
    if not view.slos:
        return '<section id="slos"><h2>SLOs</h2><p class="note">No SLO was evaluated in this run.</p></section>'
    rows = []
    for s in view.slos_sorted():
        t0, t1 = view.rel(s.get("t0")), view.rel(s.get("t1"))
        win = f"+{t0:.0f}s → +{t1:.0f}s ({fmt_duration(t1 - t0)})" if t0 is not None and t1 is not None else "—"
        worst = s.get("worst")
        wat = num(s.get("worst_at"))
        worst_txt = f"{worst} at +{wat:.0f}s" if worst and wat is not None else (worst or "—")
        rows.append(
            f'<tr class="{"" if s.get("passed") else "bad"}"><td>{esc(PHASE_NAMES.get(s.get("phase"), s.get("phase")))}</td>'
            f'<td>{esc(s.get("label"))}</td><td class="num">{esc(s.get("objective"))}</td>'
            f'<td class="num"><b>{esc(s.get("rendered"))}</b></td><td class="num">{esc(worst_txt)}</td>'
            f'<td class="num">{esc(win)}</td><td>{esc(s.get("source"))}</td><td>{pill(s.get("passed"))}</td></tr>')
    return ('<section id="slos"><h2>SLOs — steady state before, under fault, recovery after</h2>'
            '<table><tr><th>phase</th><th>SLO</th><th>objective</th><th>observed</th><th>worst second</th>'
            '<th>window</th><th>source</th><th>result</th></tr>' + "".join(rows) + "</table></section>")


def checks_section(view: RunView) -> str:
    rows = []
    for c in view.checks:
        rows.append(f'<tr class="{"" if c.get("passed") else "bad"}"><td><b>{esc(c.get("kind"))}</b></td>'
                    f'<td>{pill(c.get("passed"), "met", "NOT MET")}</td><td>{esc(c.get("summary"))}</td>'
                    f'<td>{gauges_table(as_dict(c.get("measured"))) or kv(as_dict(c.get("measured")), view)}</td></tr>')
    rec = view.recovery
    rec_html = ""
    if rec:
        secs = num(rec.get("seconds"))
        if secs is not None:
            txt = (f"Users' steady state (the client-side SLOs) was back <b>{esc(fmt_duration(secs))}</b> after the last "
                   f"revert; the plan allows {esc(fmt_duration(num(rec.get('within'))))} (confirmed over a "
                   f"{esc(fmt_duration(num(rec.get('window'))))} window).")
        elif rec.get("passed") is False:
            txt = f"The steady state was <b>not</b> back within {esc(fmt_duration(num(rec.get('within'))))} of the last revert."
        else:
            txt = "No client-side SLO to measure recovery by."
        rec_html = f'<p id="recovery">{pill(rec.get("passed"), "recovered", "NOT RECOVERED")} {txt}</p>'
    elif view.abort:
        rec_html = '<p class="note" id="recovery">Recovery was not measured: the run was aborted.</p>'
    table = ('<table><tr><th>expectation</th><th>result</th><th>summary</th><th>measured</th></tr>'
             + "".join(rows) + "</table>") if rows else '<p class="note">No expectations (expect:) in this experiment.</p>'
    return f'<section id="checks"><h2>Expectations and recovery</h2>{rec_html}{table}</section>'


def budget_section(view: RunView) -> str:
    b = view.budget()
    if not b["requests"]:
        return ('<section id="budget"><h2>Error budget</h2><p class="note">No client-side requests were recorded, '
                'so no budget was computed.</p></section>')
    obj = b["objective"]
    if obj is None:
        body = (f"<p>{fmt_int(b['failed'])} of {fmt_int(b['requests'])} requests failed. The experiment states no "
                "availability objective, so no budget is implied.</p>")
    else:
        burnt = b["burnt"]
        burnt_txt = "all of it and more (the budget was zero)" if burnt == float("inf") else f"{burnt * 100:.1f}%"
        body = (f"<p>Counted in <b>requests</b> (the SLIs are request-based): the availability objective "
                f"<b>{fmt_pct(obj)}</b> allows {(1 - obj) * 100:g}% of the run's {fmt_int(b['requests'])} requests "
                f"to fail, i.e. <b>{b['allowed']:,.1f}</b> requests. <b>{fmt_int(b['failed'])}</b> failed "
                f"({fmt_int(b['timeouts'])} of them timed out): <b>{burnt_txt}</b> of this run's budget burnt.</p>")
        if b["fault_requests"]:
            fa = b["fault_requests"] * (1 - obj)
            body += (f"<p class='note'>While faults were active: {fmt_int(b['fault_failed'])} of "
                     f"{fmt_int(b['fault_requests'])} requests failed (budget {fa:,.1f}; "
                     f"{(b['fault_failed'] / fa * 100) if fa else 0:.1f}% burnt).</p>")
    return f'<section id="budget"><h2>Error budget burnt</h2>{body}</section>'


def faults_section(view: RunView) -> str:
    if not view.faults:
        return '<section id="faults"><h2>Faults</h2><p class="note">Nothing was injected.</p></section>'
    rows = []
    for f in view.faults:
        a, r = view.rel(f.get("injected_at")), view.rel(f.get("reverted_at"))
        dur = fmt_duration(r - a) if a is not None and r is not None else "—"
        rows.append(f'<tr class="{"" if r is not None else "bad"}"><td><b>{esc(f.get("description"))}</b></td>'
                    f'<td>{esc(f.get("kind"))}</td>'
                    f'<td class="num">{"+%.1fs" % a if a is not None else "—"}</td>'
                    f'<td class="num">{"+%.1fs" % r if r is not None else "NOT REVERTED"}</td><td class="num">{dur}</td>'
                    f'<td class="mono">{esc(compact(f.get("state"), 300)) if f.get("state") else ""}</td></tr>')
    return ('<section id="faults"><h2>Faults</h2><table><tr><th>fault</th><th>kind</th><th>injected</th>'
            '<th>reverted</th><th>active</th><th>details</th></tr>' + "".join(rows) + "</table></section>")


def extra_sections(view: RunView) -> str:
    out = []
    for key, data in view.extra_sections().items():
        if key == "gameday" and isinstance(data, dict) and "run" in data:
            from harness.gameday.view import gameday_section  # scorecard + annotated timeline

            out.append(gameday_section(data, view))
            continue
        title = {"drill": "Restore drill", "gameday": "GameDay"}.get(key, key)
        if isinstance(data, dict):
            body = kv({k: v for k, v in data.items() if not isinstance(v, (list, dict))}, view)
            rest = {k: v for k, v in data.items() if isinstance(v, (list, dict))}
            for k, v in rest.items():
                body += f"<details><summary>{esc(pretty_key(k))}</summary><pre class='mono'>{esc(compact(v, 20000))}</pre></details>"
        else:
            body = f"<pre class='mono'>{esc(compact(data, 20000))}</pre>"
        out.append(f'<section id="{esc(key)}"><h2>{esc(title)}</h2>{body}</section>')
    return "".join(out)


def raw_section(view: RunView) -> str:
    rows = []
    for e in sorted(view.events, key=lambda e: num(e.get("t")) or 0):
        t = view.rel(e.get("t"))
        extra = {k: v for k, v in e.items() if k not in ("t", "kind", "text")}
        rows.append(f'<tr class="{"bad" if e.get("passed") is False or e.get("kind") in ("abort", "error") else ""}">'
                    f'<td class="num">{"+%.2fs" % t if t is not None else ""}</td><td>{esc(e.get("kind"))}</td>'
                    f'<td>{esc(e.get("text"))}</td><td class="mono">{esc(compact(extra, 200)) if extra else ""}</td></tr>')
    events = (f'<details id="raw-events"><summary>All {len(rows)} events of the run</summary>'
              '<table><tr><th>t</th><th>kind</th><th>text</th><th>data</th></tr>' + "".join(rows) + "</table></details>")
    acts = []
    for r in dicts(view.j.get("run")) + dicts(view.j.get("rollbacks")):
        a = as_dict(r.get("activity"))
        acts.append(f'<tr class="{"" if r.get("status") == "succeeded" else "bad"}"><td>{esc(a.get("type"))}</td>'
                    f'<td>{esc(a.get("name"))}</td><td>{esc(r.get("status"))}</td>'
                    f'<td class="num">{esc(fmt_duration(num(r.get("duration"))))}</td><td>{esc(compact(r.get("output"), 120))}</td></tr>')
    ss = as_dict(view.j.get("steady_states"))
    ctk = ""
    if view.j.get("status") or acts:
        ctk = (f'<details id="ctk"><summary>Chaos Toolkit journal: status {esc(view.j.get("status"))}, deviated '
               f'{esc(view.j.get("deviated"))}, steady state before {esc(as_dict(ss.get("before")).get("steady_state_met"))}'
               f', after {esc(as_dict(ss.get("after")).get("steady_state_met"))}</summary>'
               '<table><tr><th>type</th><th>activity</th><th>status</th><th>took</th><th>output</th></tr>'
               + "".join(acts) + "</table></details>")
    return f'<section id="raw"><h2>Raw record</h2>{events}{ctk}</section>'


def report_html(view: RunView, plotly_js: str) -> str:
    parts = [guarded("Verdict", lambda: banner(view))]
    body = [guarded("Key numbers", lambda: tiles(view))]
    if view.description:
        body.append(f'<p class="note" style="margin:4px 2px"><b>Experiment:</b> {esc(view.description)}</p>')
    ids: list[str] = []

    def charts_part() -> str:
        html_, got = charts_sections(view)
        ids.extend(got)
        return html_

    body.append(guarded("Charts", charts_part))
    from harness.report import plan_section

    for title, fn in (("Plan", plan_section.html), ("Alerts", alerts_section), ("SLOs", slo_section),
                      ("Expectations", checks_section),
                      ("Error budget", budget_section), ("Faults", faults_section), ("Drill / GameDay", extra_sections),
                      ("Raw record", raw_section)):
        body.append(guarded(title, lambda fn=fn: fn(view)))
    import json as _json

    link = LINK_JS % (_json.dumps(ids), _json.dumps(view.x_range))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(view.word)} · {esc(view.title)} · {esc(view.run_id)}</title>
<style>{CSS}</style>
<script type="text/javascript">{plotly_js}</script>
</head><body data-verdict="{esc(view.status)}">
{''.join(parts)}
<main>
{''.join(body)}
<footer>Generated by the resilience harness from <a href="journal.json">journal.json</a>
 (rebuild with <code>harness report {esc(view.run_id)}/journal.json</code>). Charts: plotly.js, inline; the file needs no network.</footer>
</main>
<script type="text/javascript">{link}</script>
</body></html>
"""


__all__ = ["report_html", "fig_html", "esc", "pill", "guarded", "CSS"]

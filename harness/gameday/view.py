"""The GameDay view in HTML: the scorecard and an annotated timeline (fault windows as
bars, detected / acknowledged / escalated / mitigated / resolved / notes as marks).

``gameday_section(data, view)`` is the section a scenario's report.html gains (its
journal carries a ``gameday`` record); ``gameday_page(record)`` is the day's own
``gameday.html``. Plain HTML and inline SVG: the page needs no network."""
from __future__ import annotations

from html import escape
from typing import Any

MARKS = {"detected": ("#d97706", "D"), "acknowledged": ("#2563eb", "A"), "escalated": ("#7c3aed", "E"),
         "mitigated": ("#059669", "M"), "resolved": ("#047857", "R"), "note": ("#6b7280", "N"),
         "stop": ("#dc2626", "STOP"), "checkpoint": ("#9ca3af", "?")}
CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#111}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;font-size:14px}th{background:#f3f4f6}
.pass{color:#047857;font-weight:600}.fail{color:#b91c1c;font-weight:600}.na{color:#6b7280}
svg text{font-size:11px;font-family:system-ui,sans-serif}"""


def _res(passed) -> str:
    return {True: '<span class="pass">pass</span>', False: '<span class="fail">FAIL</span>'}.get(
        passed, '<span class="na">not scored</span>')


def scorecard_html(card: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td>{escape(c['name'])}</td><td>{escape(str(c.get('objective', '')))}</td>"
                   f"<td>{escape(c['text'])}</td><td>{_res(c['passed'])}</td></tr>" for c in card["criteria"])
    incs = "".join(
        f"<tr><td>{escape(i['scenario'])}</td><td>{escape(i['severity'])}</td><td>{escape(i['fault'] or '')}</td>"
        f"<td>{escape(i['mttd']['text'])} {_res(i['mttd']['passed'])}</td>"
        f"<td>{escape(i['mtta']['text'])} {_res(i['mtta']['passed'])}</td>"
        f"<td>{escape(i['mttr']['text'])} {_res(i['mttr']['passed'])}</td>"
        f"<td>{escape(i['escalation']['text'])} {_res(i['escalation']['passed'])}</td></tr>"
        for i in card["incidents"])
    verdict = '<span class="pass">PASSED</span>' if card["passed"] else '<span class="fail">FAILED</span>'
    return (f'<div id="gameday-scorecard"><p>Scorecard: {verdict}</p><table><tr><th>criterion</th><th>objective</th>'
            f"<th>measured</th><th>result</th></tr>{rows}</table>"
            "<table><tr><th>scenario</th><th>severity</th><th>fault</th><th>MTTD</th><th>MTTA</th><th>MTTR</th>"
            f"<th>escalation</th></tr>{incs}</table></div>")


def timeline_svg(run: dict[str, Any]) -> str:
    """One scenario's annotated timeline, seconds from its first inject."""
    incs = run.get("incidents", [])
    events = [e for e in run.get("events", []) if e["kind"] in MARKS]
    t0 = run.get("first_inject") or run.get("started_at")
    if t0 is None:
        return "<p>nothing was injected</p>"
    ts = [t0] + [i.get("reverted_at") or t0 for i in incs] + [e["t"] for e in events]
    span = max(10.0, max(ts) - t0 + 5)
    width, left = 900, 40
    x = lambda t: left + (t - t0) / span * (width - left - 20)  # noqa: E731
    h = 40 + 22 * len(incs) + 60
    parts = [f'<svg class="gameday-timeline" width="{width}" height="{h}" viewBox="0 0 {width} {h}">']
    for k in range(0, int(span) + 1, max(5, int(span // 10) // 5 * 5 or 5)):
        parts.append(f'<line x1="{x(t0 + k):.1f}" y1="20" x2="{x(t0 + k):.1f}" y2="{h - 10}" stroke="#eee"/>'
                     f'<text x="{x(t0 + k):.1f}" y="14" text-anchor="middle">+{k}s</text>')
    for n, i in enumerate(incs):
        y = 30 + 22 * n
        a, b = x(i["injected_at"]), x(i.get("reverted_at") or (t0 + span))
        parts.append(f'<rect x="{a:.1f}" y="{y}" width="{max(2.0, b - a):.1f}" height="14" fill="#fecaca">'
                     f'<title>{escape(i["fault"] or "")}</title></rect>'
                     f'<text x="{a + 3:.1f}" y="{y + 11}">{escape((i["fault"] or "")[:60])}</text>')
    y = 40 + 22 * len(incs)
    for n, e in enumerate(events):
        color, letter = MARKS[e["kind"]]
        ex = x(e["t"])
        parts.append(f'<g class="mark" data-kind="{e["kind"]}"><line x1="{ex:.1f}" y1="20" x2="{ex:.1f}" y2="{y + 10}" '
                     f'stroke="{color}" stroke-dasharray="3,2"/><circle cx="{ex:.1f}" cy="{y + 18 + (n % 3) * 12}" r="7" '
                     f'fill="{color}"/><text x="{ex:.1f}" y="{y + 22 + (n % 3) * 12}" text-anchor="middle" fill="#fff">'
                     f'{letter[0]}</text><title>+{e["t"] - t0:.1f}s {escape(e["kind"])}: {escape(e.get("text", ""))} '
                     f'({escape(e.get("by", ""))})</title></g>')
    parts.append("</svg>")
    rows = "".join(f"<tr><td>+{e['t'] - t0:.1f}s</td><td>{escape(e['kind'])}</td><td>{escape(e.get('text', ''))}</td>"
                   f"<td>{escape(e.get('by', ''))}</td></tr>" for e in run.get("events", []))
    return ("".join(parts) + "<details><summary>GameDay events</summary><table><tr><th>t</th><th>event</th>"
            f"<th>detail</th><th>by</th></tr>{rows}</table></details>")


def gameday_section(data: dict[str, Any], view=None) -> str:
    """The section of a scenario's report.html."""
    run = data.get("run", {})
    return (f'<section id="gameday"><h2>GameDay</h2><p>{escape(str(data.get("title", "")))} '
            f'({escape(str(data.get("date", "")))}, {escape(str(data.get("mode", "")))}): scenario '
            f'{escape(str(run.get("scenario", "")))}, severity {escape(str(run.get("severity", "")))}. '
            f'Postmortem draft: <a href="postmortem.md">postmortem.md</a>.</p>'
            + scorecard_html({**data.get("scorecard", {}), "incidents": run.get("incidents", []),
                              "criteria": data.get("scorecard", {}).get("criteria", [])})
            + timeline_svg(run) + "</section>")


def gameday_page(record: dict[str, Any]) -> str:
    people = ", ".join(f"{escape(p['name'])} ({escape(p['role'])})" for p in record.get("participants", []))
    objs = "".join(f"<li>{escape(o)}</li>" for o in record.get("objectives", []))
    runs = ""
    for r in record["runs"]:
        link = f' <a href="{escape(r["run_dir"].split("/")[-1])}/report.html">report</a>' if r.get("run_dir") else ""
        pm = f' <a href="{escape(r["run_dir"].split("/")[-1])}/postmortem.md">postmortem</a>' if r.get("postmortem") else ""
        runs += (f"<h3>{escape(r['title'])} <small>({escape(r['severity'])}, {escape(r['verdict'])})</small>{link}{pm}</h3>"
                 + (timeline_svg(r) if not r.get("skipped") else f"<p>{escape('; '.join(r['reasons']))}</p>"))
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>GameDay · {escape(record['title'])}"
            f"</title><style>{CSS}</style></head><body><h1>{escape(record['title'])}</h1>"
            f"<p>{escape(record['date'])} · {escape(record['mode'])} · participants: {people}</p>"
            f"<h2>Objectives</h2><ul>{objs}</ul><h2>Scorecard</h2>{scorecard_html(record['scorecard'])}"
            f"<h2>Timeline</h2>{runs}</body></html>")

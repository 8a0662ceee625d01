"""The no-lasting-damage expectation in a run report: every gauge before and after, side by side."""
from __future__ import annotations

import html
from typing import Any


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _n(x: Any) -> str:
    return f"{x:g}" if isinstance(x, (int, float)) else _e(x)


def gauges_table(measured: dict[str, Any]) -> str:
    """HTML table of ``measured["gauges"]`` (and the alerts), or '' when there are none."""
    rows = measured.get("gauges") if isinstance(measured, dict) else None
    if not isinstance(rows, list) or not rows:
        return ""
    out = []
    for r in rows:
        if not isinstance(r, dict):
            continue
        ok = r.get("ok")
        what = str(r.get("what") or "") + (" (before = at the last revert)" if r.get("baseline") == "revert" else "")
        out.append(f'<tr class="{"" if ok else "bad"}"><td>{_e(r.get("gauge"))}</td><td>{_e(what)}</td>'
                   f'<td class="num">{_n(r.get("before"))}</td><td class="num"><b>{_n(r.get("after"))}</b></td>'
                   f'<td class="num">{_n(r.get("change"))}</td><td class="num">{_e(r.get("tolerance"))}</td>'
                   f'<td>{_e(r.get("unit"))}</td><td>{"ok" if ok else "WORSE"}</td></tr>')
    alerts = measured.get("alerts")
    if isinstance(alerts, dict):
        new = alerts.get("new") or []
        out.append(f'<tr class="{"bad" if new else ""}"><td>alerts firing</td><td>new ones must resolve</td>'
                   f'<td class="num">{_e(", ".join(alerts.get("before") or []) or "none")}</td>'
                   f'<td class="num"><b>{_e(", ".join(alerts.get("after") or []) or "none")}</b></td>'
                   f'<td class="num">{_e(", ".join(new) or "-")}</td><td class="num">0 new</td><td></td>'
                   f'<td>{"WORSE" if new else "ok"}</td></tr>')
    return ('<table class="damage"><tr><th>gauge</th><th>what</th><th>before the fault</th><th>after recovery</th>'
            '<th>change</th><th>tolerance</th><th>unit</th><th>result</th></tr>' + "".join(out) + "</table>")

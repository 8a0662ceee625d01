"""The "Judged by the plan" part of a report: for each verdict the plan rule and its
source (seed and section), the plan's 30-day budget the run burnt with the
budget-policy tier before and after, and the chaos-policy rules checked (and forced).
Reads ``journal["harness"]["plan"]`` (harness.plan.run_hooks); nothing when absent."""
from __future__ import annotations

from html import escape
from typing import Any


def _plan(view) -> dict[str, Any]:
    return dict(view.h.get("plan") or {})


def _pct(x: Any) -> str:
    try:
        return f"{float(x) * 100:.4g}%"
    except (TypeError, ValueError):
        return "—"


def verdict_rules(view) -> list[tuple[str, bool | None, str]]:
    """(verdict, passed, plan rule with its source) for every verdict the plan decided."""
    p = _plan(view)
    rules = dict(p.get("rules") or {})
    out = []
    for s in view.slos:
        key = f"{s.get('phase')}: {s.get('label')}"
        if key in rules:
            out.append((f"SLO {key} — observed {s.get('rendered')}", s.get("passed"), rules[key]))
    for c in view.checks:
        rule = (c.get("measured") or {}).get("plan_rule")
        if rule:
            out.append((f"{c.get('kind')}: {c.get('summary')}", c.get("passed"), rule))
    return out


def html(view) -> str:
    p = _plan(view)
    if not p:
        return ""
    e = escape
    rows = "".join(f'<tr class="{"" if ok else "bad"}"><td>{e(str(v))}</td><td>{"met" if ok else "NOT MET"}</td>'
                   f"<td>{e(str(r))}</td></tr>" for v, ok, r in verdict_rules(view))
    parts = [f'<section id="plan"><h2>Judged by the plan</h2><p>Plan <b>{e(str(p.get("plan", "")))}</b> '
             f'({e(str(p.get("file", "")))}), service <b>{e(str(p.get("service", "")))}</b>.</p>']
    if rows:
        parts.append("<table><tr><th>verdict</th><th>result</th><th>plan rule (source)</th></tr>" + rows + "</table>")
    for a in p.get("applied") or []:
        parts.append(f'<p class="note">{e(a.get("alert", ""))} {e(a.get("role", ""))} — {e(a.get("why", ""))} '
                     f'(brought in by {e(a.get("fault", ""))}; source: {e(a.get("source", ""))})</p>')
    b = p.get("budget") or {}
    if b.get("slos"):
        brow = "".join(
            f"<tr><td>{e(r['slo'])}</td><td>{e(r['budget_unit'])}</td><td>{r['bad_requests']} of {r['requests']}</td>"
            f"<td>{r['bad_seconds']} s</td><td><b>{_pct(r['share'])}</b></td>"
            f"<td>{_pct(r['remaining_before'])} → {_pct(r['remaining_after'])}</td>"
            f"<td>{e((r.get('tier_before') or {}).get('tier', '—'))} → {e((r.get('tier_after') or {}).get('tier', '—'))}"
            f"</td></tr>" for r in b["slos"])
        parts.append("<h3>The plan's 30-day error budget</h3><table><tr><th>SLO</th><th>counted in</th>"
                     "<th>bad requests</th><th>bad seconds</th><th>budget burnt</th><th>remaining</th>"
                     "<th>budget-policy tier</th></tr>" + brow + "</table>"
                     f'<p class="note">{e(str(b.get("counted", "")))}</p>')
    elif b:
        parts.append(f'<p class="note">Budget: {e(str(b.get("error") or b.get("note")))}</p>')
    pol = p.get("policy") or {}
    if pol:
        prow = "".join(f'<tr class="{"" if r["ok"] else "bad"}"><td>{e(r["rule"])}</td><td>{e(r["detail"])}</td>'
                       f'<td>{e(r["source"])}</td></tr>' for r in pol.get("checked") or [])
        forced = f'<p><b>Forced</b> (--force): {e(str(pol["forced"]))}</p>' if pol.get("forced") else ""
        parts.append("<h3>Chaos policy</h3>" + forced + "<table><tr><th>rule</th><th>finding</th><th>source</th></tr>"
                     + prow + "</table>")
    parts.append("</section>")
    return "".join(parts)


def markdown(view) -> list[str]:
    p = _plan(view)
    if not p:
        return []
    out = [f"### Judged by the plan {p.get('plan')} ({p.get('service')})", "", "| verdict | result | plan rule (source) |",
           "|---|---|---|"]
    for v, ok, r in verdict_rules(view):
        out.append(f"| {str(v).replace('|', '/')} | {'✅' if ok else '❌'} | {str(r).replace('|', '/')} |")
    worst = (p.get("budget") or {}).get("worst")
    if worst:
        out += ["", f"Budget: {worst['slo']} burnt {_pct(worst['share'])} of the plan's 30-day budget; tier "
                    f"{(worst.get('tier_before') or {}).get('tier', '—')} → {(worst.get('tier_after') or {}).get('tier', '—')}"]
    if (p.get("policy") or {}).get("forced"):
        out += ["", f"Policy forced: {p['policy']['forced']}"]
    return out + [""]

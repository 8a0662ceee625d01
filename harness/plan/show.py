"""A readable summary of a plan, as data (rows of text) the CLI prints with rich.

Sections: services and SLOs (objective, SLA, error budget in minutes and requests),
alerts by severity with the receivers they reach, scaling, backups and RTO/RPO,
incidents and policy. Every number carries its source.
"""
from __future__ import annotations

from typing import Any

from harness.plan.model import Num, Plan, Source, _prom_duration
from harness.plan.slo import BURN_WINDOWS, describe_windows
from harness.quantities import render_value


def pct(ratio: float) -> str:
    return f"{ratio * 100:.4g}%"


def dur(n: Num | None) -> str:
    return "-" if n is None else _prom_duration(n.value)


def src(s: Source | None) -> str:
    return "-" if s is None else str(s)


def summary(plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {"plan": plan.name, "title": plan.title, "path": plan.path,
                           "derived_from": plan.derived_from, "severities": list(plan.severities)}
    slos = []
    for s in plan.slos:
        what = s.plugin_id or s.sli_kind
        if s.threshold is not None:
            what += f" <= {_prom_duration(s.threshold.value)}"
        slos.append({
            "service": s.service, "slo": s.name, "sli": what, "objective": pct(s.objective),
            "sla": pct(s.sla.value) if s.sla else "-",
            "budget_minutes": round(s.error_budget_minutes(), 2),
            "budget_requests_per_million": round(s.error_budget_requests(), 1),
            "budget_unit": s.budget_unit,
            "burn_alerts": ", ".join(f"{k}: {lab['severity']}" for k, lab in (("page", s.page), ("ticket", s.ticket))
                                     if lab) or "-",
            "source": src(s.source), "description": s.description,
        })
    out["slos"] = slos
    out["targets"] = [{"service": svc["name"], "target": f.what, "value": f.value, "source": src(f.source)}
                      for svc in plan.services for f in svc["targets"]]
    rt = plan.routing
    alerts = []
    for sev in plan.severities:
        for a in plan.alerts:
            if a.severity != sev:
                continue
            if a.burn:
                cond = describe_windows(a.burn) + f" of the {a.slo} budget"
            elif a.threshold is not None:
                unit = "seconds" if a.threshold.text.strip().endswith(("s", "m", "h")) else (
                    "ratio" if "%" in a.threshold.text else "number")
                cond = f"{a.op} {render_value(a.threshold.value, unit) if unit != 'number' else a.threshold.text}"
            else:
                cond = a.expr
            alerts.append({"severity": sev, "alert": a.name, "condition": cond, "for": dur(a.for_),
                           "receivers": ", ".join(rt.receivers_for(sev)) if rt else "-",
                           "source": src(a.source), "for_source": src(a.for_.source) if a.for_.source != a.source
                           else ""})
    out["alerts"] = alerts
    if rt:
        out["routes"] = {
            "group_wait": dur(rt.group_wait), "group_interval": dur(rt.group_interval),
            "repeat_interval": dur(rt.repeat_interval), "repeat_source": src(rt.repeat_interval.source),
            "receivers": [{"receiver": r.name, "kind": r.kind, "channels": ", ".join(r.channels),
                           "severities": ", ".join(r.severities),
                           "respond_within": dur(r.respond_within), "source": src(r.source)} for r in rt.receivers],
        }
    out["inhibitions"] = [{"name": i.name, "source_match": i.source_match, "target_match": i.target_match,
                           "equal": list(i.equal), "source": src(i.source)} for i in plan.inhibitions]
    out["maintenance"] = {"windows": [f"{p.name}: {'/'.join(p.days) or 'every day'} {p.start:%H:%M}-{p.end:%H:%M}"
                                      for p in plan.maintenance], "note": plan.maintenance_note}
    sc = plan.scaling
    if sc:
        rows = []
        for label, n in (("target", None), ("replicas today", sc.replicas_today), ("min replicas", sc.min_replicas),
                         ("max replicas", sc.max_replicas), ("cpu target", sc.cpu_target),
                         ("memory target", sc.memory_target), ("scale in below (cpu)", sc.scale_in_below),
                         ("stabilisation window", sc.stabilisation_window),
                         ("scale out within", sc.scale_out_within),
                         ("desired != current at most", sc.mismatch_within)):
            if label == "target":
                if sc.target:
                    rows.append({"what": label, "value": sc.target, "source": src(sc.source)})
                continue
            if n is not None:
                rows.append({"what": label, "value": n.text, "source": src(n.source)})
        for f in (*sc.triggers, *sc.capacity):
            rows.append({"what": f.what, "value": f.value, "source": src(f.source)})
        out["scaling"] = rows
    b = plan.backup
    if b:
        rows = []
        if b.full_at:
            rows.append({"what": "full backup", "value": f"daily at {b.full_at}", "source": src(b.full_source)})
        for label, n in (("incremental every", b.incremental_every), ("full backups kept", b.retention_full),
                         ("RTO", b.rto), ("RPO", b.rpo)):
            if n is not None:
                rows.append({"what": label, "value": n.text, "source": src(n.source)})
        if b.replication:
            rows.append({"what": "replication", "value": b.replication, "source": src(b.replication_source)})
        for t in b.tiers:
            v = f"{t.method}; {t.schedule}; keep {t.retention}"
            if t.rpo or t.rto:
                v += f"; RPO {dur(t.rpo)} / RTO {dur(t.rto)}"
            rows.append({"what": f"tier: {t.target}", "value": v, "source": src(t.source)})
        for f in (*b.restore_tests, *b.rules):
            rows.append({"what": f.what, "value": f.value, "source": src(f.source)})
        if b.dr_steps:
            rows.append({"what": "DR steps", "value": " -> ".join(b.dr_steps), "source": src(b.dr_source)})
        if b.restore_drills:
            rows.append({"what": "restore drills", "value": b.restore_drills, "source": src(b.source if hasattr(b, 'source') else None)})
        out["backup"] = rows
    inc = plan.incidents
    if inc:
        out["incidents"] = [{"level": lv.level, "name": lv.name, "definition": lv.definition,
                             "respond": lv.respond_text or "-", "resolve": lv.resolve_text or "-",
                             "source": src(lv.source)} for lv in inc.levels]
        out["escalation"] = {lv: " -> ".join(f"{who} ({after})" for after, who in steps)
                             for lv, steps in inc.escalation.items()}
        out["escalation_source"] = src(inc.escalation_source)
        out["incident_facts"] = [{"what": f.what, "value": f.value, "source": src(f.source)} for f in inc.facts]
    pol = [{"what": f.what, "value": f.value, "source": src(f.source)} for f in plan.policy]
    if plan.chaos:
        c = plan.chaos
        bh = c.business_hours
        pol.append({"what": "business hours", "value": f"{'/'.join(bh.days)} {bh.start:%H:%M}-{bh.end:%H:%M}",
                    "source": src(bh.source)})
        pol.append({"what": "chaos: only outside business hours", "value": ", ".join(c.outside_business_hours) or "-",
                    "source": src(c.source)})
        pol.append({"what": "chaos: one experiment at a time", "value": str(c.one_at_a_time).lower(),
                    "source": src(c.source)})
    out["policy"] = pol
    out["burn_windows"] = {k: describe_windows(v) for k, v in BURN_WINDOWS.items()}
    return out

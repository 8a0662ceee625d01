"""What a run does with its plan (called from :mod:`harness.engine.run` at three points).

    before(run)   before the lock and the load: the chaos policy (refused with exit 3
                  unless --force "reason"), the plan alerts the faults bring into play and
                  why (printed), each of them defined in the LIVE Prometheus rules
                  (/api/v1/rules) or the run is refused (exit 3: no waiting for an alert
                  that cannot fire); the "before" announcement.
    armed(run)    with the guard: the budget_burnt abort condition is watched.
    after(run, result)  the plan's 30-day error budget burnt by the run and the
                  budget-policy tier before/after, the plan rule behind each verdict,
                  the "after" announcement; all into result.plan (journal and report).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.errors import EnvironmentNotReady

if TYPE_CHECKING:
    from harness.engine.results import RunResult
    from harness.engine.run import Run


class PlanRefused(EnvironmentNotReady):
    """The plan says this run may not start (exit 3): a rule missing from the live
    Prometheus, or the chaos policy (forbidden window, a precondition unmet)."""

    exit_code = 3


def live_alert_names(prom_url: str) -> set[str]:
    from harness.plan.live import live_rule_groups

    return {r["alert"] for g in live_rule_groups(prom_url) for r in g["rules"] if "alert" in r}


def before(run: "Run") -> None:
    from harness.plan import policy

    pj = run.exp.plan_judging
    policy.enforce(run)
    if pj is None:
        return
    run.event("plan", f"judged by plan {pj.plan.name} ({pj.path})" + (f" service {pj.service}" if pj.service else ""))
    for sli, rule in pj.slo_rules.items():
        run.event("plan", f"SLO {sli}: {rule}")
    for a in pj.applied:
        run.event("plan", f"expects {a.line()} (brought in by {a.fault})")
    alerts = [a for a in pj.applied if a.role in ("fires", "silent")]
    if not alerts:
        return
    if not run.target.prometheus_url:
        raise PlanRefused(f"expect: plan: the {run.target.kind} target has no Prometheus, so the plan's alerts "
                          f"({', '.join(a.alert for a in alerts)}) cannot be checked; nothing was started")
    try:
        live = live_alert_names(run.target.prometheus_url)
    except EnvironmentNotReady as exc:
        raise PlanRefused(f"expect: plan: cannot read the live alert rules: {exc}; nothing was started") from None
    missing = [a for a in alerts if a.alert not in live]
    if missing:
        lines = "; ".join(f"{a.alert} ({a.role}, plan rule from {a.source})" for a in missing)
        raise PlanRefused(f"expect: plan: the live Prometheus ({run.target.prometheus_url}/api/v1/rules) does "
                          f"not define {lines}: such an alert can never fire, so the run was refused before any "
                          f"load or fault (it has {len(live)} alert rules; regenerate them from {pj.path})")
    run.event("plan", f"all {len(alerts)} expected alerts are defined in the live Prometheus rules")


def armed(run: "Run") -> None:
    from harness.plan import budget

    budget.watch(run)


def after(run: "Run", result: "RunResult") -> None:
    from harness.plan import budget, policy

    out: dict[str, Any] = {}
    pj = run.exp.plan_judging
    if pj is not None:
        out.update({"ref": pj.ref, "file": str(pj.path), "service": pj.service, "plan": pj.plan.name,
                    "applied": [vars(a) for a in pj.applied], "slo_rules": dict(pj.slo_rules)})
        rules = {}
        for r in result.slo_results:
            if r.sli in pj.slo_rules:
                rules[f"{r.phase}: {r.label}"] = pj.slo_rules[r.sli]
        for ex in run.exp.expect:
            if ex.origin:
                rules[f"{ex.kind} {ex.params.get('alert', '')}".strip()] = ex.origin
        for c in result.checks:  # the rule behind each check's verdict, shown with it in the report
            rule = pj.rule_for(c.kind, {"alert": c.measured.get("alert")})
            if rule:
                c.measured["plan_rule"] = rule
        out["rules"] = rules
        try:
            out["budget"] = budget.report(run, result, pj)
        except Exception as exc:  # noqa: BLE001 - a budget that cannot be counted says so
            out["budget"] = {"error": f"could not count the budget: {type(exc).__name__}: {exc}"}
    pol = policy.after(run, result)
    if pol:
        out["policy"] = pol
    if out:
        result.plan = out  # type: ignore[attr-defined]

"""plan:, slo: plan, expect: plan and the budget, without a lab (docs/plan-judging.md)."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness.errors import InvalidInput
from harness.experiment.loader import load_experiment
from harness.plan import load_plan
from harness.plan.budget import burn, tier_of
from harness.sli.client import ClientSeries

ROOT = Path(__file__).resolve().parents[2]

BASE = f"""\
title: t
plan: PLAN
load: {{locustfile: {ROOT}/load/api.py, users: 5}}
steady-state: {{window: 5s, slo: plan}}
method:
  - {{fault: dependency-down, duration: 5s}}
abort-when:
  - {{elapsed: "> 1m"}}
expect: plan
"""


def _write(tmp_path, text: str, name: str = "e.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _problems(path: Path) -> list[str]:
    with pytest.raises(InvalidInput) as exc:
        load_experiment(path)
    return [str(p) for p in exc.value.problems]


def test_slo_plan_and_expect_plan_expand_from_the_plan(tmp_path):
    exp = load_experiment(_write(tmp_path, BASE.replace("PLAN", "plans/lab.yaml#api")))
    slos = {s.sli: s.objective.text for s in exp.steady_state.slos}
    assert slos == {"availability": ">= 99.9%", "latency_p95": "< 500ms", "error_ratio": "<= 0.1%"}
    assert all("seed 00" in s.origin for s in exp.steady_state.slos)
    kinds = [(e.kind, e.params["alert"]) for e in exp.expect]
    assert ("alert-fires", "DependencyDown") in kinds and ("alert-resolves", "DependencyDown") in kinds
    assert ("alert-silent", "ApiErrorRateCritical") in kinds
    fires = next(e for e in exp.expect if e.kind == "alert-fires")
    # for 3s + scrape/timeout/evaluation 3s + group_wait 1s + slack 5s
    assert fires.params["within"] == 12.0
    applied = {a.alert: a for a in exp.plan_judging.applied}
    assert "up{job=\"dependency\"} == 0" in applied["DependencyDown"].why


def test_the_target_default_plan_when_none_is_named(tmp_path):
    exp = load_experiment(_write(tmp_path, BASE.replace("plan: PLAN\n", "")))
    assert exp.plan_judging.plan.name == "lab" and exp.plan_judging.service == "api"


@pytest.mark.parametrize("ref, message", [
    ("plans/nope.yaml#api", "plan file 'plans/nope.yaml' not found"),
    ("plans/lab.yaml#billing", "plan plans/lab.yaml has no service 'billing' (it has: api)"),
    ("plans/audit-set.yaml", "name one, e.g. plans/audit-set.yaml#"),
])
def test_plan_reference_errors_are_input_errors_at_the_plan_key(tmp_path, ref, message):
    path = _write(tmp_path, BASE.replace("PLAN", ref))
    problems = _problems(path)
    assert any(p.startswith(f"{path}:2:1: ") and message in p for p in problems), problems
    res = subprocess.run([str(Path(sys.executable).parent / "harness"), "validate", str(path)],
                         capture_output=True, text=True, cwd=ROOT)
    out = res.stdout + res.stderr
    assert res.returncode == 2 and f"{path}:2:1" in out and "Traceback" not in out, out


def test_a_plan_without_the_alert_the_fault_should_fire_is_an_input_error(tmp_path):
    plan = (ROOT / "plans/lab.yaml").read_text()
    start = plan.index("  - name: DependencyDown")
    end = plan.index("  - name: DatabasePrimaryMissing")
    _write(tmp_path, plan[:start] + plan[end:], "no-dep.yaml")
    path = _write(tmp_path, BASE.replace("PLAN", f"{tmp_path}/no-dep.yaml#api"))
    problems = _problems(path)
    assert any(":9:1: expect: plan: plan lab does not define DependencyDown (fires for dependency-down" in p
               for p in problems), problems


def test_expect_plan_with_no_applicable_alert_says_so(tmp_path):
    text = BASE.replace("PLAN", "plans/lab.yaml#api").replace("{fault: dependency-down, duration: 5s}",
                                                               "{fault: node-drain, node: x, duration: 5s}")
    problems = _problems(_write(tmp_path, text))
    assert any("no alert of plan lab applies to node-drain" in p for p in problems), problems


def test_budget_burnt_needs_load(tmp_path):
    text = BASE.replace("PLAN", "plans/lab.yaml#api").replace(
        f"load: {{locustfile: {ROOT}/load/api.py, users: 5}}\n", "").replace(
        "steady-state: {window: 5s, slo: plan}\n", "").replace('{elapsed: "> 1m"}', '{budget_burnt: "> 2%"}')
    problems = _problems(_write(tmp_path, text))
    assert any("budget_burnt > 2%' reads the load generator" in p for p in problems), problems


def test_budget_share_by_requests_and_by_minutes():
    plan = load_plan(ROOT / "plans/lab.yaml")
    avail = plan.slo("api-availability")
    series = ClientSeries()
    t0 = float(int(time.time()) - 100)
    for i in range(1000):  # 100 s at 100 req/s (a record every 0.1 s), 10 s of them all failed
        failed = 10 if 400 <= i < 500 else 0
        series.add({"t": t0 + (i + 1) / 10, "n": 10, "fail": {"http": failed} if failed else {}, "hist": {"10": 10}})
    row, = burn(series, [avail], t0, t0 + 100)
    assert row["bad_requests"] == 1000 and row["requests"] == 10000
    # 30 days at 100 req/s = 259.2 M requests; 0.1 % of them = 259,200
    assert row["budget_requests_30d"] == pytest.approx(259200, rel=1e-3)
    assert row["share_by_requests"] == pytest.approx(1000 / 259200, rel=1e-3)
    assert row["bad_seconds"] == 10 and row["share_by_minutes"] == pytest.approx((10 / 60) / 43.2, rel=1e-3)
    assert tier_of(plan, 0.9)["tier"] == "error budget > 50% remaining"
    assert tier_of(plan, 0.3)["tier"] == "error budget 20-50% remaining"
    assert tier_of(plan, 0.1)["tier"] == "error budget < 20% remaining"
    assert "seed 002 §3.5" in tier_of(plan, 0.1)["action"]


def test_report_shows_the_plan_rule_of_each_verdict():
    import json

    from harness.report import plan_section
    from harness.report.view import RunView

    journal = json.loads((ROOT / "tests/fixtures/journal-passed.json").read_text())
    h = journal["harness"]
    slo = h["slo_results"][0]
    h["checks"].append({"kind": "alert-fires", "passed": True, "summary": "alert X fired after 4.3s",
                        "measured": {"alert": "X", "plan_rule": "plan lab alert X (for 3s; seed 002 §5 Y)"},
                        "evidence": [], "verified": True})
    h["plan"] = {"plan": "lab", "file": "plans/lab.yaml", "service": "api",
                 "rules": {f"{slo['phase']}: {slo['label']}": "plan lab SLO api-availability (seed 003 §6.2)"},
                 "budget": {"slos": [{"slo": "api-availability", "budget_unit": "requests", "bad_requests": 3,
                                      "requests": 1000, "bad_seconds": 1, "share": 0.011, "remaining_before": 1.0,
                                      "remaining_after": 0.989, "tier_before": {"tier": "error budget > 50% remaining"},
                                      "tier_after": {"tier": "error budget > 50% remaining"}}]}}
    view = RunView(journal)
    html = plan_section.html(view)
    assert "seed 003 §6.2" in html and "seed 002 §5 Y" in html and "1.1%" in html
    md = "\n".join(plan_section.markdown(view))
    assert "seed 002 §5 Y" in md and "| plan rule (source) |" in md


def test_expect_plan_on_a_cpu_spike_is_the_plans_scaling_rule(tmp_path):
    text = BASE.replace("PLAN", "plans/lab.yaml#api").replace(
        "{fault: dependency-down, duration: 5s}", "{fault: cpu-stress, selector: {app: api}, millicores: 400, duration: 5s}")
    exp = load_experiment(_write(tmp_path, text))
    rep = next(e for e in exp.expect if e.kind == "replicas")
    assert rep.params == {"at-least": 6, "at-most": 6, "never-below": 3, "back-to": 3, "within": 60.0,
                          "mismatch-at-most": 30.0}
    assert "scale-out-within 60s" in exp.plan_judging.rule_for("replicas", {})
    assert "mismatch-within 30s" in exp.plan_judging.rule_for("replicas", {})
    plan = (ROOT / "plans/lab.yaml").read_text()
    start = plan.index("  scale-out-within:")
    _write(tmp_path, plan[:start] + plan[plan.index("\n", start) + 1:], "no-bound.yaml")
    problems = _problems(_write(tmp_path, text.replace("plans/lab.yaml#api", f"{tmp_path}/no-bound.yaml#api")))
    assert any("gives no scaling min-replicas, max-replicas and scale-out-within" in p for p in problems), problems

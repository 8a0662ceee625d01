"""The operations plan: loading, provenance of every number, generated rules and routes."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from harness.errors import InvalidInput
from harness.plan import alertmanager_config, default_plan_path, load_plan, prometheus_rules

LAB_PLAN = Path(__file__).resolve().parents[2] / "plans" / "lab.yaml"

MINIMAL = """\
plan: t
services:
  - version: prometheus/v1
    service: api
    slos:
      - name: avail
        objective: 99.9
        sli: {plugin: {id: harness/availability}}
        source: {seed: "003", section: "SLO"}
alerts:
  - name: Down
    expr: 'up == 0'
    for: 5s
    severity: critical
    summary: down
    source: {seed: "003", section: "§5 ContainerDown"}
routes:
  group-wait: 1s
  group-interval: 5s
  repeat-interval: 15m
  source: {seed: lab, section: "lab timing"}
  by-severity:
    critical: {receiver: crit}
    warning: {receiver: warn}
    info: {receiver: info}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "plan.yaml"
    p.write_text(text)
    return p


def test_lab_plan_loads_and_every_number_has_a_source():
    plan = load_plan(LAB_PLAN)
    assert default_plan_path() == LAB_PLAN
    assert plan.slo("api-availability").objective == pytest.approx(0.999)
    assert plan.slo("api-availability").source.seed == "003"
    assert plan.slo("api-availability").error_budget_minutes() == pytest.approx(43.2)
    numbers = plan.numbers()
    assert len(numbers) > 30
    for where, num in numbers:
        assert num.source.seed in ("000", "001", "002", "003", "004", "lab"), where
        assert num.source.seed == "lab" or num.source.section, where
    # Shortened lab timings say so.
    dep = plan.alert("DependencyDown")
    assert dep.for_.value == 3.0 and dep.for_.source.seed == "lab"
    assert plan.alert("ApiErrorRateCritical").source.example is True
    # The required alerts of issue 4 are there.
    for name in ("DependencyDown", "DatabasePrimaryMissing", "ApiReplicasBelowDesired"):
        plan.alert(name)
    assert plan.scaling.orchestrator_policy() == {
        "min_replicas": 3, "max_replicas": 6, "cpu_target": 0.7, "scale_in_below": 0.3, "scale_in_window": 15.0,
    }
    assert plan.backup.replication == "synchronous"


def test_generated_rules_and_routes():
    plan = load_plan(LAB_PLAN)
    rules = prometheus_rules(plan)["groups"][0]["rules"]
    by_name = {r["alert"]: r for r in rules}
    assert by_name["ApiErrorRateCritical"]["expr"] == "sli:error:ratio_rate30s > 0.01"
    assert by_name["ApiErrorRateCritical"]["for"] == "10s"
    assert by_name["DependencyDown"]["labels"]["severity"] == "warning"
    assert "seed 002" in by_name["ApiErrorRateCritical"]["annotations"]["source"]
    am = alertmanager_config(plan, "http://127.0.0.1:9")
    routes = {r["matchers"][0]: r["receiver"] for r in am["route"]["routes"]}
    assert routes == {'severity="critical"': "critical", 'severity="warning"': "warning", 'severity="info"': "info"}
    assert {r["receiver"] for r in am["route"]["routes"]} == {"critical", "warning", "info"}
    assert am["route"]["repeat_interval"] == "15m"
    hooks = {r["name"]: r["webhook_configs"][0]["url"] for r in am["receivers"]}
    assert hooks["critical"] == "http://127.0.0.1:9/hook/critical"


def test_minimal_plan(tmp_path):
    plan = load_plan(write(tmp_path, MINIMAL))
    assert plan.routing.receiver_for("critical") == "crit"
    assert plan.alert("Down").for_.source.seed == "003"


@pytest.mark.parametrize("change, message, line", [
    (("        source: {seed: \"003\", section: \"SLO\"}\n", ""), "every number needs a 'source", 6),
    (("severity: critical", "severity: urgent"), "unknown severity 'urgent'", 14),
    (("seed: \"003\", section: \"SLO\"", "seed: \"009\", section: \"SLO\""), "source seed must be one of", 9),
    (("objective: 99.9", "objective: \"<= 500ms\""), "objective must be a ratio", 7),
    (("objective: 99.9", "objective: 250"), "objective must be a ratio", 7),
    (("        sli: {plugin", "        colour: red\n        sli: {plugin"), "unknown key 'colour'", 8),
    (("expr: 'up == 0'", "expr: 'up > 42'"), "numbers in expr need a source", 12),
    (("    for: 5s\n", ""), "has no 'for'", 11),
    (("    info: {receiver: info}\n", ""), "no route for info", 23),
])
def test_bad_plans_name_file_and_line(tmp_path, change, message, line):
    path = write(tmp_path, MINIMAL.replace(*change))
    with pytest.raises(InvalidInput) as err:
        load_plan(path)
    text = str(err.value)
    assert message in text
    assert f"{path}:{line}:" in text


def test_bad_yaml_reports_position(tmp_path):
    path = write(tmp_path, "plan: t\nslos: [\n")
    with pytest.raises(InvalidInput, match=r"plan.yaml:\d+:\d+: not valid YAML"):
        load_plan(path)


def test_number_with_its_own_source(tmp_path):
    text = MINIMAL.replace("    for: 5s\n", "    for: {value: 1s, source: {seed: lab, section: \"lab timing\", note: \"shortened\"}}\n")
    plan = load_plan(write(tmp_path, text))
    f = plan.alert("Down").for_
    assert f.value == 1.0 and f.source.seed == "lab" and f.source.note == "shortened"
    assert "lab choice" in str(f.source)


def test_chaos_policy_business_hours_and_forbidden_periods(tmp_path):
    text = MINIMAL + """\
chaos:
  business-hours: {days: weekdays, from: "09:00", to: "18:00"}
  outside-business-hours: [zone-loss]
  forbidden:
    - {name: release freeze, dates: ["2026-12-24"], from: "00:00", to: "24:00"}
  source: {seed: "002", section: "§4.3"}
"""
    chaos = load_plan(write(tmp_path, text)).chaos
    monday_10 = datetime(2026, 11, 23, 10, 0)
    monday_20 = datetime(2026, 11, 23, 20, 0)
    saturday_10 = datetime(2026, 11, 28, 10, 0)
    assert chaos.in_business_hours(monday_10)
    assert not chaos.in_business_hours(monday_20) and not chaos.in_business_hours(saturday_10)
    assert "outside business hours" in chaos.refusal(monday_10, ["zone-loss"])
    assert chaos.refusal(monday_10, ["pod-kill"]) is None
    assert chaos.refusal(monday_20, ["zone-loss"]) is None
    assert "release freeze" in chaos.refusal(datetime(2026, 12, 24, 3, 0), [])


def test_backup_schedule_due():
    from harness.lab.backup import due

    now = datetime(2026, 11, 23, 10, 30)
    midnight = datetime(2026, 11, 23, 0, 5).timestamp()
    yesterday = datetime(2026, 11, 22, 0, 5).timestamp()
    assert due(None, None, now) == "full"
    assert due(yesterday, None, now) == "full"  # today's 00:00 full is missing
    assert due(midnight, datetime(2026, 11, 23, 10, 0).timestamp(), now) is None
    assert due(midnight, datetime(2026, 11, 23, 9, 0).timestamp(), now) == "incr"

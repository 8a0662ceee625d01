"""`harness plan test` with the real promtool and amtool (Debian's prometheus and
prometheus-alertmanager packages): the generated rules pass, and a copy edited by hand
(one threshold loosened, one route changed) fails exactly there."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from harness.plan import load_plan
from harness.plan.cli import plan as plan_cli
from harness.plan.generate import alertmanager_config, prometheus_rules
from harness.plan.promtest import run_plan_tests

PLANS = Path(__file__).resolve().parents[2] / "plans"

pytestmark = pytest.mark.skipif(not (shutil.which("promtool") or Path("/usr/bin/promtool").exists())
                                or not (shutil.which("amtool") or Path("/usr/bin/amtool").exists()),
                                reason="promtool/amtool not installed (run ./dev.sh setup)")


def failures(results):
    return sorted((r.rule, r.kind) for r in results if not r.ok)


@pytest.mark.parametrize("name", ["lab", "safevideo", "fx-trader"])
def test_generated_rules_pass(name):
    res = CliRunner().invoke(plan_cli, ["test", str(PLANS / f"{name}.yaml"), "--json"])
    out = json.loads(res.output)
    assert res.exit_code == 0, [r for r in out["results"] if not r["ok"]]
    kinds = {r["kind"] for r in out["results"] if r["ok"] and not r.get("skipped")}
    assert {"fires", "silent", "severity", "route"} <= kinds


def test_edited_copy_fails_exactly_where_edited(tmp_path):
    plan = load_plan(PLANS / "safevideo.yaml")
    rules = prometheus_rules(plan, interval="1m", sli_records=True)
    for g in rules["groups"]:
        for r in g["rules"]:
            if r.get("alert") == "HighErrorRate":  # loosened: 5 % -> 10 %
                assert r["expr"].endswith(">= 0.05")
                r["expr"] = r["expr"].replace(">= 0.05", ">= 0.1")
    am = alertmanager_config(plan, None)
    for route in am["route"]["routes"]:  # warning no longer reaches Slack
        if route["receiver"] == "slack-notifications":
            route["matchers"] = ['severity="critical"']
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    (tmp_path / "am.yml").write_text(yaml.safe_dump(am, sort_keys=False))
    results = run_plan_tests(plan, rules_files=[str(tmp_path / "rules.yml")], am_file=str(tmp_path / "am.yml"))
    assert failures(results) == [("HighErrorRate", "fires"), ("HighErrorRate", "severity"),
                                 ("route severity=warning", "route")]
    msg = {(r.rule, r.kind): r.message for r in results}
    assert "does not fire with the indicator at 0.0625" in msg[("HighErrorRate", "fires")]
    assert "reaches email; the plan says slack-notifications, email" in msg[("route severity=warning", "route")]
    # the untouched rules still pass (the tests are real, not a blanket failure)
    assert ("HighCPUUsage", "fires") not in failures(results)
    res = CliRunner().invoke(plan_cli, ["test", str(PLANS / "safevideo.yaml"), "--rules", str(tmp_path / "rules.yml"),
                                        "--alertmanager-config", str(tmp_path / "am.yml")])
    assert res.exit_code == 1 and "FAIL HighErrorRate" in res.output


def test_tightened_threshold_and_shorter_for_are_caught(tmp_path):
    plan = load_plan(PLANS / "safevideo.yaml")
    rules = prometheus_rules(plan, interval="1m", sli_records=True)
    for g in rules["groups"]:
        for r in g["rules"]:
            if r.get("alert") == "HighCPUUsage":
                r["for"] = "1m"  # plan: 5m
            if r.get("alert") == "HighUploadFailureRate":
                r["expr"] = r["expr"].replace(">= 0.1", ">= 0.05")  # plan: 10 %
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    results = run_plan_tests(plan, rules_files=[str(tmp_path / "rules.yml")])
    assert failures(results) == [("HighCPUUsage", "not-early"), ("HighUploadFailureRate", "silent")]

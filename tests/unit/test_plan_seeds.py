"""Each seed's plan against the seed's own text: a handful of numbers per plan
(SLOs, one alert per level, one route, RTO/RPO) as `plan show` reports them, plus the
bad inputs the issue names (unknown severity, unknown receiver, no `for`, non-ratio SLO)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.errors import InvalidInput
from harness.plan import load_plan
from harness.plan.cli import plan as plan_cli
from harness.plan.show import summary

PLANS = Path(__file__).resolve().parents[2] / "plans"
SEEDS = Path("/work/shared/seeds")


def show(name: str) -> dict:
    res = CliRunner().invoke(plan_cli, ["show", str(PLANS / f"{name}.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def slo(s: dict, service: str, name: str) -> dict:
    return next(x for x in s["slos"] if x["service"] == service and x["slo"] == name)


def alert(s: dict, name: str) -> dict:
    return next(a for a in s["alerts"] if a["alert"] == name)


def seed_text(prefix: str) -> str:
    files = list(SEEDS.glob(f"{prefix}_*.txt"))
    return files[0].read_text() if files else ""


def test_every_plan_validates():
    res = CliRunner().invoke(plan_cli, ["validate", str(PLANS)])
    assert res.exit_code == 0, res.output
    assert res.output.count("ok  ") == len(list(PLANS.glob("*.yaml"))) >= 5


def test_every_number_has_a_source_and_example_flag():
    for f in PLANS.glob("*.yaml"):
        p = load_plan(f)
        for where, num in p.numbers():
            assert num.source.seed in ("000", "001", "002", "003", "004", "lab", "plan"), (f, where)
            assert num.source.seed in ("lab", "plan") or num.source.section, (f, where)


def test_audit_set_matches_seed_000():
    s = show("audit-set")
    text = seed_text("000")
    ident = slo(s, "identity", "availability")
    assert (ident["objective"], ident["sla"], ident["budget_minutes"]) == ("99.95%", "99.9%", 21.6)
    assert slo(s, "box-integration", "availability")["budget_minutes"] == 216.0
    assert slo(s, "auditset", "verification-success")["objective"] == "99.99%"
    assert slo(s, "identity", "latency-p99")["sli"] == "latency_p99 <= 200ms"
    # one alert per level, with the routes of 通知チャネル
    t = alert(s, "TamperingDetected")
    assert t["severity"] == "P1" and t["receivers"] == "slack-alerts, slack-critical, pagerduty, email-managers"
    a = alert(s, "AvailabilityLow")
    assert (a["severity"], a["condition"], a["for"]) == ("P2", "< 99%", "5m")
    assert alert(s, "AuthFailuresHigh")["severity"] == "P3"
    assert alert(s, "AuthFailuresHigh")["receivers"] == "slack-alerts"
    assert s["routes"]["repeat_interval"] == "15m"
    assert [i["target_match"] for i in s["inhibitions"]] == [{"depends_on": "box"}]
    p1 = next(x for x in s["incidents"] if x["level"] == "P1")
    assert (p1["respond"], p1["resolve"]) == ("15m", "1h")
    assert s["escalation"]["P1"].endswith("VP (4h)")
    if text:  # the numbers are the seed's own
        for needle in ("99.95%", "21.6分", "可用性 < 99% (5min)", "同一アラートは15分間抑制", "| P1 | Critical | サービス全体停止 | 15分 | 1時間 |"):
            assert needle in text


def test_template_matches_seed_002():
    s = show("template")
    text = seed_text("002")
    web = slo(s, "web", "availability")
    assert (web["objective"], web["budget_minutes"]) == ("99.9%", 43.2)
    assert alert(s, "ErrorRateCritical")["condition"] == "> 1%"
    assert alert(s, "ErrorRateCritical")["receivers"] == "phone, mail, chat"
    assert alert(s, "SyntheticLatencyWarning")["condition"] == "> 500ms"
    assert alert(s, "SyntheticLatencyWarning")["receivers"] == "mail, chat"
    assert alert(s, "CpuHighInfo")["receivers"] == "chat"
    backup = {r["what"]: r["value"] for r in s["backup"]}
    assert backup["RTO"] == "8h" and backup["RPO"] == "24h"
    assert "RPO 6h / RTO 4h" in backup["tier: database"]
    p = load_plan(PLANS / "template.yaml")
    assert p.alert("ErrorRateCritical").source.example is True
    if text:
        for needle in ("| データベース | 6時間以内 | 4時間以内 |", "| Critical | 電話+メール+チャット |", "1%超 | 1分 | Critical"):
            assert needle in text


def test_safevideo_matches_seed_003():
    s = show("safevideo")
    text = seed_text("003")
    assert slo(s, "safevideo-api", "availability")["objective"] == "99.9%"
    assert slo(s, "safevideo-api", "latency-p95")["sli"] == "latency_p95 <= 500ms"
    assert alert(s, "ContainerDown")["for"] == "2m" and alert(s, "ContainerDown")["severity"] == "critical"
    assert alert(s, "HighCPUUsage")["condition"] == ">= 80%" and alert(s, "HighCPUUsage")["for"] == "5m"
    assert alert(s, "HighCPUUsage")["receivers"] == "slack-notifications, email"
    rec = {r["receiver"]: r for r in s["routes"]["receivers"]}
    assert rec["slack-notifications"]["channels"] == "Slack #safevideo-alerts"
    assert rec["email"]["severities"] == "critical, warning, info"
    assert any("mysqldump --all-databases --single-transaction" in r["value"] for r in s["backup"])
    assert len([a for a in s["alerts"] if "BudgetBurn" not in a["alert"]]) == 9
    if text:
        for needle in ("コンテナ停止（2分以上）", "'#safevideo-alerts'", "target: 0.999"):
            assert needle in text


def test_fx_trader_matches_seed_004():
    s = show("fx-trader")
    text = seed_text("004")
    backup = {r["what"]: r["value"] for r in s["backup"]}
    assert (backup["RTO"], backup["RPO"]) == ("4h", "1h")
    assert backup["DR steps"].startswith("find the latest backup")
    assert any("weekly" in r["value"] for r in s["backup"])
    assert alert(s, "HighHttp5xxRate")["condition"] == "> 1%"
    assert alert(s, "LowDiskFree")["condition"] == "< 10%"
    assert alert(s, "HighMemoryUsage")["severity"] == "warning"
    assert s["slos"] == []  # seed 004 states no SLO
    if text:
        for needle in ("RTO (Recovery Time Objective)**: 4時間", "1% を超えた", "毎週、ランダムにバックアップを復元"):
            assert needle in text


def test_lab_is_derived_from_the_template():
    lab, tpl = load_plan(PLANS / "lab.yaml"), load_plan(PLANS / "template.yaml")
    assert lab.alert("ApiErrorRateCritical").threshold.value == tpl.alert("ErrorRateCritical").threshold.value
    assert lab.alert("ApiErrorRateCritical").for_.value < tpl.alert("ErrorRateCritical").for_.value
    assert lab.alert("ApiErrorRateCritical").for_.source.seed == "lab"


BAD = """\
plan: bad
severities: {levels: [P1, P2], source: {seed: "000", section: "重大度定義"}}
services:
  - version: prometheus/v1
    service: api
    slos:
      - name: latency
        objective: OBJECTIVE
        sli: {plugin: {id: harness/latency_p95, options: {threshold: 500ms}}}
        source: {seed: "003", section: "SLO"}
alerts:
  - name: Down
    indicator: {gauge: 'up'}
    op: "=="
    threshold: 0
    FOR
    severity: SEVERITY
    summary: down
    source: {seed: "003", section: "§4.2"}
receivers:
  - {name: pager, severities: RECEIVES, source: {seed: "000", section: "通知チャネル"}}
routes:
  group-wait: 30s
  group-interval: 5m
  repeat-interval: 15m
  source: {seed: plan}
"""


@pytest.mark.parametrize("objective, for_, severity, receives, message, line", [
    ("95", "for: 2m", "P5", "[P1, P2]", "unknown severity 'P5'", 17),
    ("95", "for: 2m", "P1", "[P1, P9]", "unknown severity 'P9'", 21),
    ("95", "for: 2m", "P2", "[P1]", "severity 'P2' but no receiver takes it", 12),
    ("95", "labels: {}", "P1", "[P1, P2]", "has no 'for'", 12),
    ('"<= 500ms"', "for: 2m", "P1", "[P1, P2]", "objective must be a ratio", 8),
    ("500ms", "for: 2m", "P1", "[P1, P2]", "objective must be a ratio", 8),
    ("99", "for: 2m", "P1", "[P1, P2]", "its objective is 95", 8),
])
def test_bad_input_is_an_error_with_file_and_line(tmp_path, objective, for_, severity, receives, message, line):
    f = tmp_path / "bad.yaml"
    f.write_text(BAD.replace("OBJECTIVE", objective).replace("FOR", for_).replace("SEVERITY", severity)
                 .replace("RECEIVES", receives))
    with pytest.raises(InvalidInput) as err:
        load_plan(f)
    assert message in str(err.value)
    assert f"{f}:{line}:" in str(err.value)
    res = CliRunner().invoke(plan_cli, ["validate", str(f)])
    assert res.exit_code != 0


def test_good_variant_of_bad_input_loads(tmp_path):
    f = tmp_path / "ok.yaml"
    f.write_text(BAD.replace("OBJECTIVE", "95").replace("FOR", "for: 2m").replace("SEVERITY", "P1")
                 .replace("RECEIVES", "[P1, P2]"))
    p = load_plan(f)
    s = summary(p)
    assert s["slos"][0]["budget_minutes"] == pytest.approx(2160.0)
    assert p.routing.receivers_for("P1") == ["pager"]

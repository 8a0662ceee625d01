"""`harness plan check` against the running lab: its Prometheus and Alertmanager are
generated from plans/lab.yaml, so the live stack must do everything the plan asks."""
from __future__ import annotations

import json

from click.testing import CliRunner

from harness.plan import load_plan
from harness.plan.cli import plan as plan_cli
from harness.plan.live import check_live


def test_lab_has_zero_gaps(lab):
    plan = load_plan(lab.cfg.plan or "plans/lab.yaml")
    results = check_live(plan, lab.cfg.prometheus_url, lab.cfg.alertmanager_url)
    gaps = [r.as_dict() for r in results if not r.ok]
    assert gaps == []
    kinds = {r.kind for r in results if r.ok and not r.skipped}
    assert {"fires", "silent", "route", "repeat-interval"} <= kinds
    names = {r.rule for r in results}
    for expected in ("ApiReplicaDown", "DatabaseFailoverHappened", "DependencyDown"):
        assert expected in names


def test_cli_defaults_to_the_running_lab(lab):
    res = CliRunner().invoke(plan_cli, ["check", "--lab-dir", str(lab.cfg.run_dir), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["gaps"] == []

"""expect: plan on a CPU spike checks the plan's scaling rule (max-replicas within
scale-out-within, back to min-replicas). experiments/autoscale.yaml is the passing case
(an experiment item); here the counterpart: a plan copy that allows only 5 s to scale
out, against the same lab, fails with the time it really took. Behind -m soak (about
100 s of lab time):

    HARNESS_STATE_DIR=... .venv/bin/pytest --lab=auto ... -m soak tests/lab/test_plan_scaling.py
"""
from __future__ import annotations

import pytest

from tests.lab.conftest import ROOT, wait_replicas_ready


@pytest.mark.soak
def test_scale_out_slower_than_the_plan_allows_fails_with_the_time_it_took(lab, run_experiment, tmp_path):
    plan = (ROOT / "plans/lab.yaml").read_text()
    old = "scale-out-within: {value: 60s,"
    assert old in plan
    (tmp_path / "quick.yaml").write_text(plan.replace(old, "scale-out-within: {value: 5s,"))
    text = (ROOT / "experiments/autoscale.yaml").read_text().replace(
        "plan: plans/lab.yaml#api", f"plan: {tmp_path}/quick.yaml#api").replace(
        "locustfile: load/api.py", f"locustfile: {ROOT}/load/api.py")
    result = run_experiment(text)
    wait_replicas_ready(lab, lab.cfg.replicas)
    check = next(c for c in result.checks if c.kind == "replicas")
    assert result.verdict.status == "failed"
    assert not check.passed, check.summary
    assert "never reached 6 within 5.0s of the injection" in check.summary, check.summary
    assert check.measured["seconds_to_scale_out"] is None and check.measured["peak"] >= 3, check.measured
    assert check.measured.get("plan_rule", "").startswith("plan lab scaling: min 3, max 6, scale-out-within 5s")

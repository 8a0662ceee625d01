"""The shipped GameDay scenarios (scenarios/, collected by pytest) pass on the healthy
lab; here the same files run on a lab weakened on purpose and must fail with the reason
and the measured numbers."""
from __future__ import annotations

import re

import pytest

from harness.lab import db, network

from .conftest import ROOT, orchestrator, policy, wait_replicas_ready
from .test_counterparts import _restart_replicas_with


def _queueing(lab, enabled: bool) -> None:
    """The service's test-only knob, on every running replica (no restart)."""
    import urllib.request

    for r in orchestrator(lab, "/state")["replicas"]:
        req = urllib.request.Request(f"http://{r['addr']}/api/payments/queue?enabled={int(enabled)}", data=b"",
                                     method="POST")
        with urllib.request.urlopen(req, timeout=2) as resp:
            assert resp.status == 200


def test_payment_scenario_counts_the_payments_a_broken_queue_lost(lab, run_experiment):
    _queueing(lab, False)  # test-only knob: acknowledge, then drop what cannot be sent
    try:
        result = run_experiment(ROOT / "scenarios/payment-api-down.yaml")
    finally:
        _queueing(lab, True)
    assert result.verdict.status == "failed", result.verdict.reasons
    (check,) = [c for c in result.checks if c.kind == "payments-delivered"]
    m = check.measured
    assert not check.passed and m["lost"] > 0 and m["lost"] == m["queued"], m
    assert m["delivered"] == m["accepted"] - m["lost"]
    assert f"{m['lost']} of {m['accepted']} accepted payments were lost" in check.summary, check.summary
    assert check.summary in " ".join(result.verdict.reasons)
    # users never saw it: the service said "queued" every time
    assert all(r.passed for r in result.slo_results), [r.sentence() for r in result.slo_results]


def test_zone_down_scenario_fails_when_every_replica_sits_in_the_lost_zone(lab, run_experiment):
    state = db.cluster_state(lab.cfg) or {}
    zone = next(db.zone_of(m["name"]) for m in state["members"] if m.get("role") == "replica")
    text = (ROOT / "scenarios/zone-down.yaml").read_text().replace("zone: db-replica", f"zone: {zone}") \
        .replace("locustfile: load/api.py", f"locustfile: {ROOT}/load/api.py")
    assert f"zone: {zone}" in text
    with policy(lab, zones=[zone]):
        wait_replicas_ready(lab, lab.cfg.replicas)
        result = run_experiment(text)
    wait_replicas_ready(lab, lab.cfg.replicas)
    assert result.verdict.status in ("failed", "aborted"), result.verdict.reasons
    reasons = " ".join(result.verdict.reasons)
    assert "error_ratio > 3%" in reasons or "not met" in reasons or "BROKEN" in reasons, reasons
    assert network.zone_status(lab.cfg, zone) == "up"
    assert all(f["reverted_at"] is not None for f in result.faults)


@pytest.mark.soak
def test_payment_scenario_aborts_without_the_fallback(lab, run_experiment):
    """-m soak: the payment scenario with the quote fallback switched off: users see the
    dependency's errors and the stop condition ends it, with the measured ratio."""
    _restart_replicas_with(lab, dependency_fallback=0)
    try:
        result = run_experiment(ROOT / "scenarios/payment-api-down.yaml")
    finally:
        _restart_replicas_with(lab, dependency_fallback=1)
    assert result.verdict.status == "aborted", result.verdict.reasons
    assert "error_ratio > 5%" in result.verdict.reasons[0], result.verdict.reasons
    assert result.abort and result.abort["observed"] > 0.05
    assert all(f["reverted_at"] is not None for f in result.faults)


@pytest.mark.soak
def test_db_primary_scenario_fails_closed_on_a_single_member_database(lab, tmp_path):
    """-m soak: on a lab whose database has one member nothing can take over: the
    scenario's wait for the failover times out and fails the run closed (the old
    primary is brought back), and writes-resume says no failover happened."""
    from harness.engine.run import Run
    from harness.experiment.loader import load_experiment
    from harness.lab.lab import Lab
    from harness.targets.lab import LabTarget

    from .conftest import sibling_config

    cfg = sibling_config(lab.cfg, 7, zones=["a"], replicas=1, max_replicas=1, run_dir=str(tmp_path / "one"))
    one = Lab(cfg)
    try:
        one.up()
        text = (ROOT / "scenarios/db-primary-down.yaml").read_text() \
            .replace("locustfile: load/api.py", f"locustfile: {ROOT}/load/api.py")
        path = tmp_path / "db-primary-down.yaml"
        path.write_text(text)
        result = Run(load_experiment(path), LabTarget(cfg), report_dir=tmp_path / "reports", lock_wait=300).execute()
    finally:
        left = one.down()
    assert left == []
    assert result.verdict.status == "failed", result.verdict.reasons
    reason = result.verdict.reasons[0]
    assert re.search(r"'pause 0s' waited 6\d\.\ds for alert DatabaseFailoverHappened to fire, at most 60\.0s: "
                     r"not met \(alert DatabaseFailoverHappened was never seen\)", reason), reason
    assert "every fault injected so far was reverted" in reason
    assert all(f["reverted_at"] is not None for f in result.faults)

"""The shipped GameDay scenarios (scenarios/, collected by pytest) pass on the healthy
lab; here the same files run on a lab weakened on purpose and must fail with the reason
and the measured numbers."""
from __future__ import annotations

from harness.lab import db, network

from .conftest import ROOT, policy, wait_replicas_ready
from .test_counterparts import _restart_replicas_with


def test_payment_scenario_counts_the_payments_a_broken_queue_lost(lab, run_experiment):
    _restart_replicas_with(lab, payment_queue=0)  # test-only knob: acknowledge, then drop
    try:
        result = run_experiment(ROOT / "scenarios/payment-api-down.yaml")
    finally:
        _restart_replicas_with(lab, payment_queue=1)
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

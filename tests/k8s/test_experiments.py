"""The experiments in experiments/k8s/ pass on the healthy demo workloads (pytest collects
and runs them: harness/pytest_plugin.py); here each runs, unchanged, through the engine
against a namespace holding a workload broken on purpose, and must FAIL, with the reason
in its verdict."""
from __future__ import annotations

from pathlib import Path

import pytest
from k8s_support import REPO, ZONE_LABEL, make_deployment, make_hpa, make_pdb, wait_for

pytestmark = pytest.mark.k8s

EXPERIMENTS = REPO / "experiments" / "k8s"


def run_experiment(tb, name: str, namespace: str, tmp_path: Path):
    """experiments/k8s/<name>.yaml through the engine, on the test bed, in ``namespace``."""
    from harness.engine.run import Run
    from harness.experiment.loader import load_experiment

    target = tb.make_target(namespace=namespace, **{"zone-map": {"a": "zone-a", "b": "zone-b", "c": "zone-c"}})
    exp = load_experiment(EXPERIMENTS / f"{name}.yaml")
    result = Run(exp, target, report_dir=tmp_path / "reports", lock_wait=900).execute()
    text = " | ".join(result.verdict.reasons)
    print(f"\n[measured] {name} counterpart: {result.verdict.status}: {text}")
    return result, text


def _uncordoned(tb) -> bool:
    return not any(n.spec.unschedulable for n in tb.core.list_node().items)


def test_pod_kill_experiment_fails_for_a_single_replica_web(k8s_testbed, ns, tmp_path):
    make_deployment(k8s_testbed, ns, "web", 1, spread=False)
    result, text = run_experiment(k8s_testbed, "pod-kill", ns, tmp_path)
    assert result.verdict.status == "failed", text
    (check,) = result.checks
    assert check.kind == "recovers" and not check.passed
    assert check.measured["serving_min"] == 0, check.measured


def test_zone_loss_experiment_fails_when_web_is_pinned_to_the_lost_zone(k8s_testbed, ns, tmp_path):
    make_deployment(k8s_testbed, ns, "web", 2, spread=False, pin_zone="zone-a")
    result, text = run_experiment(k8s_testbed, "zone-loss", ns, tmp_path)
    assert result.verdict.status == "failed", text
    by_kind = {c.kind: c for c in result.checks}
    assert not by_kind["pods-per-zone"].passed
    assert by_kind["pods-per-zone"].measured["pending"] == 2
    assert not by_kind["no-pending-pods"].passed
    assert "Pending" in text
    assert _uncordoned(k8s_testbed)  # the zone came back with the revert


def test_node_drain_experiment_fails_on_a_too_strict_pdb(k8s_testbed, ns, tmp_path):
    tb = k8s_testbed
    make_deployment(tb, ns, "web", 3)
    make_pdb(tb, ns, "web", "web", 3)
    zone_b = {n.metadata.name for n in tb.core.list_node(label_selector=f"{ZONE_LABEL}=zone-b").items}
    assert any(p.spec.node_name in zone_b for p in tb.core.list_namespaced_pod(ns).items)
    result, text = run_experiment(tb, "node-drain-pdb", ns, tmp_path)
    # The drain cannot finish: the engine ends the run (the fault could not act) and
    # reverts; the verdict carries the budget's own refusal.
    assert result.verdict.status in ("failed", "error"), text
    assert "disruption budget" in text, text
    assert _uncordoned(tb)
    assert len([p for p in tb.core.list_namespaced_pod(ns).items if not p.metadata.deletion_timestamp]) == 3


def test_hpa_experiment_fails_when_the_maximum_is_too_low(k8s_testbed, ns, tmp_path):
    tb = k8s_testbed
    make_deployment(tb, ns, "api", 1, spread=False)
    make_hpa(tb, ns, "api", "api", 1, 2)

    def has_metric():
        metrics = tb.autoscaling.read_namespaced_horizontal_pod_autoscaler("api", ns).status.current_metrics or []
        return any(m.resource and m.resource.current and m.resource.current.average_utilization is not None
                   for m in metrics)

    wait_for(has_metric, 180, "the HPA to read CPU metrics", step=1.0)
    result, text = run_experiment(tb, "hpa", ns, tmp_path)
    assert result.verdict.status == "failed", text
    (check,) = result.checks
    assert not check.passed and "maxReplicas is 2" in check.summary
    assert check.measured["peak"] == 2

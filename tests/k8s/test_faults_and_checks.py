"""Every Kubernetes fault injected and reverted for real, against a real API server,
scheduler and controllers (KWOK nodes); every check passing on a healthy workload and
failing on a broken one. Times are measured and recorded (``-s`` prints them), never
asserted against wall-clock thresholds."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from harness.checks.base import RunClock
from harness.errors import FaultError
from harness.targets.kubernetes.k8sutil import NOT_READY_LABEL, USAGE_CPU_ANNOTATION, DrainBlocked

from k8s_support import (
    REPO,
    ZONE_LABEL,
    hpa_diagnostics,
    pod_metrics,
    make_deployment,
    make_hpa,
    make_pdb,
    only_result,
    pods_of,
    run_fault,
    wait_for,
    zone_of_node,
)

pytestmark = pytest.mark.k8s


def _record(name, **numbers):
    print(f"\n[measured] {name}: " + json.dumps(numbers, default=str))


def _live(pods):
    return [p for p in pods if not p.metadata.deletion_timestamp]


def _nodes_in(tb, zone):
    return sorted(n for n, z in zone_of_node(tb).items() if z == zone)


def _cordoned(tb):
    return sorted(n.metadata.name for n in tb.core.list_node().items if n.spec.unschedulable)


# -- pod-kill + recovers ----------------------------------------------------------------------------
def test_pod_kill_replicaset_restores_and_recovers_passes(k8s_testbed, ns):
    tb = k8s_testbed
    make_deployment(tb, ns, "web", 6)
    before = {p.metadata.uid for p in pods_of(tb, ns, "web")}
    target = tb.make_target(namespace=ns)
    fault = target.fault("pod-kill", {"selector": {"app": "web"}, "count": 2})
    check = target.check("recovers", {"deployment": "web", "within": "30s"})
    run = run_fault(target, fault, [check])
    assert run.inject_error is None
    victims = {v["uid"] for v in run.state["victims"]}
    assert len(victims) == 2 and victims <= before
    res = only_result(run, "recovers")
    assert res.passed, res.summary
    assert res.measured["desired"] == 6 and res.measured["serving_now"] == 6
    assert res.measured["serving_min"] <= 5, "the kill must be visible to the check"
    # it started after the injection returned (as in the engine) and replayed from before it
    assert res.measured["replayed_from_before_injection"] is True
    after = {p.metadata.uid for p in _live(pods_of(tb, ns, "web"))}
    assert not (after & victims) and len(after) == 6  # ReplicaSet replaced them
    _record("pod-kill 2/6", summary=res.summary, **{k: res.measured[k] for k in ("serving_min", "seconds_below_desired")})


def test_pod_kill_percent(k8s_testbed, ns):
    tb = k8s_testbed
    make_deployment(tb, ns, "web", 6)
    fault = tb.make_target(namespace=ns).fault("pod-kill", {"selector": {"app": "web"}, "percent": 50})
    state = fault.prepare()
    assert len(state["victims"]) == 3 and state["matching"] == 6
    fault.inject(state)
    wait_for(lambda: (tb.apps.read_namespaced_deployment("web", ns).status.available_replicas or 0) == 6
             and not ({v["uid"] for v in state["victims"]} & {p.metadata.uid for p in pods_of(tb, ns, "web")}),
             60, "6 new available replicas")
    fault.revert(state)  # idempotent no-op
    fault.revert(state)


def test_pod_kill_nothing_matches(k8s_testbed, ns):
    fault = k8s_testbed.make_target(namespace=ns).fault("pod-kill", {"selector": {"app": "ghost"}})
    with pytest.raises(FaultError, match="no running pod matches app=ghost"):
        fault.prepare()


def test_recovers_fails_for_single_replica(k8s_testbed, ns):
    tb = k8s_testbed
    make_deployment(tb, ns, "solo", 1)
    target = tb.make_target(namespace=ns)
    run = run_fault(
        target,
        target.fault("pod-kill", {"selector": {"app": "solo"}}),
        [target.check("recovers", {"deployment": "solo", "within": "30s"})],
    )
    res = only_result(run, "recovers")
    assert not res.passed, res.summary
    assert res.measured["serving_min"] == 0 and "min-available" in res.summary
    _record("pod-kill single replica", summary=res.summary)


# -- zone-loss (drain) + pods-per-zone + no-pending-pods ----------------------------------------------
def test_zone_loss_drain_reschedules_to_other_zones(k8s_testbed, ns):
    tb = k8s_testbed
    make_deployment(tb, ns, "web", 6)
    make_pdb(tb, ns, "web", "web", 4)
    zone_a = _nodes_in(tb, "zone-a")
    target = tb.make_target(namespace=ns)
    fault = target.fault("zone-loss", {"zone": "zone-a"})
    checks = [
        target.check("pods-per-zone", {"deployment": "web", "within": "60s"}),
        target.check("no-pending-pods", {"within": "20s"}),
        target.check("recovers", {"deployment": "web", "within": "30s", "min-available": 4}),
    ]
    seen_during = {}

    def during(state):
        seen_during["cordoned"] = _cordoned(tb)
        zones = zone_of_node(tb)
        seen_during["zones_of_pods"] = sorted(zones[p.spec.node_name] for p in _live(pods_of(tb, ns, "web")))

    run = run_fault(target, fault, checks, after_inject=during, hold=5.0)
    assert run.inject_error is None, run.inject_error
    assert run.state["mode"] == "drain" and sorted(n["name"] for n in run.state["nodes"]) == zone_a
    assert seen_during["cordoned"] == zone_a
    assert "zone-a" not in seen_during["zones_of_pods"] and len(seen_during["zones_of_pods"]) == 6
    spread = only_result(run, "pods-per-zone")
    assert spread.passed, spread.summary
    assert spread.measured["lost_zones"] == ["zone-a"]
    assert spread.measured["per_zone"]["zone-b"] >= 1 and spread.measured["per_zone"]["zone-c"] >= 1
    assert only_result(run, "no-pending-pods").passed
    rec = only_result(run, "recovers")
    assert rec.passed and rec.measured["serving_min"] >= 4, rec.summary
    # revert uncordoned the zone
    assert _cordoned(tb) == []
    assert fault.verify_reverted(run.state) == []
    _record("zone-loss drain", drain_seconds=round(run.inject_seconds, 3), spread=spread.summary,
            recovers=rec.summary)


def test_zone_loss_checks_fail_when_pods_pinned_to_lost_zone(k8s_testbed, ns):
    tb = k8s_testbed
    make_deployment(tb, ns, "pinned", 2, spread=False, pin_zone="zone-a")
    target = tb.make_target(namespace=ns)
    run = run_fault(
        target,
        target.fault("zone-loss", {"zone": "zone-a", "timeout": "30s"}),
        [
            target.check("pods-per-zone", {"deployment": "pinned", "within": "8s"}),
            target.check("no-pending-pods", {"within": "3s"}),
            target.check("recovers", {"deployment": "pinned", "within": "5s", "from": "inject"}),
        ],
        hold=9.0,
    )
    assert run.inject_error is None, run.inject_error  # the drain itself succeeds
    spread = only_result(run, "pods-per-zone")
    assert not spread.passed, spread.summary
    assert spread.measured["pending"] == 2
    pending = only_result(run, "no-pending-pods")
    assert not pending.passed, pending.summary
    rec = only_result(run, "recovers")
    assert not rec.passed and rec.measured["serving_min"] == 0, rec.summary
    # after the revert the pods go back to zone-a
    wait_for(lambda: (tb.apps.read_namespaced_deployment("pinned", ns).status.available_replicas or 0) == 2,
             60, "pinned pods running again after revert")
    _record("zone-loss pinned", spread=spread.summary, pending=pending.summary, recovers=rec.summary)


def test_zone_loss_unknown_zone_and_zone_map(k8s_testbed, ns):
    target = k8s_testbed.make_target(namespace=ns, **{"zone-map": {"a": "zone-a"}})
    with pytest.raises(FaultError, match="zones in this cluster: zone-a, zone-b, zone-c"):
        target.fault("zone-loss", {"zone": "zone-x"}).prepare()
    state = target.fault("zone-loss", {"zone": "a", "mode": "blackhole"}).prepare()
    assert state["zone_value"] == "zone-a" and state["mode"] == "not-ready"
    assert _cordoned(k8s_testbed) == []  # prepare changed nothing


# -- node-drain + PDB ------------------------------------------------------------------------------
def test_node_drain_respects_pdb(k8s_testbed, ns):
    tb = k8s_testbed
    make_deployment(tb, ns, "web", 6)
    make_pdb(tb, ns, "web", "web", 5)
    target = tb.make_target(namespace=ns)
    fault = target.fault("node-drain", {"selector": {ZONE_LABEL: "zone-b"}, "timeout": "60s"})
    run = run_fault(target, fault, [target.check("recovers", {"deployment": "web", "within": "30s", "min-available": 5})])
    assert run.inject_error is None, run.inject_error
    drained = {n["name"] for n in run.state["nodes"]}
    assert drained == set(_nodes_in(tb, "zone-b"))
    rec = only_result(run, "recovers")
    assert rec.passed, rec.summary
    assert rec.measured["serving_min"] >= 5  # the budget held throughout
    assert fault.last_report["evicted"] >= 2
    assert _cordoned(tb) == []
    _record("node-drain with PDB minAvailable 5/6", drain_seconds=round(run.inject_seconds, 3),
            report=fault.last_report, recovers=rec.summary)


def test_node_drain_blocked_by_too_strict_pdb(k8s_testbed, ns):
    tb = k8s_testbed
    make_deployment(tb, ns, "strict", 3)
    make_pdb(tb, ns, "strict", "strict", 3)
    node = next(p.spec.node_name for p in pods_of(tb, ns, "strict"))
    target = tb.make_target(namespace=ns)
    fault = target.fault("node-drain", {"node": node, "timeout": "5s"})
    state = fault.prepare()
    with pytest.raises(DrainBlocked) as info:
        fault.inject(state)
    msg = str(info.value)
    assert "disruption budget" in msg and f"{ns}/strict-" in msg, msg
    assert info.value.measured["evictions_refused_429"] >= 1
    assert _cordoned(tb) == [node]  # cordoned until revert
    assert len(_live(pods_of(tb, ns, "strict"))) == 3  # nothing was evicted
    fault.revert(state)
    fault.revert(state)  # idempotent
    assert _cordoned(tb) == []
    _record("node-drain too strict PDB", message=msg)


def test_node_drain_refuses_unmanaged_pods(k8s_testbed, ns):
    from kubernetes import client

    tb = k8s_testbed
    node = _nodes_in(tb, "zone-c")[0]
    tb.core.create_namespaced_pod(ns, client.V1Pod(
        metadata=client.V1ObjectMeta(name="bare"),
        spec=client.V1PodSpec(node_name=node, containers=[client.V1Container(name="c", image="fake")]),
    ))
    fault = tb.make_target(namespace=ns).fault("node-drain", {"node": node})
    with pytest.raises(FaultError, match=f"{ns}/bare"):
        fault.prepare()
    assert _cordoned(tb) == []


# -- node-not-ready / zone-loss not-ready -------------------------------------------------------------
def test_node_not_ready_label_set_and_removed(k8s_testbed, ns):
    tb = k8s_testbed
    node = _nodes_in(tb, "zone-c")[1]
    fault = tb.make_target(namespace=ns).fault("node-not-ready", {"node": node})
    state = fault.prepare()
    t0 = time.monotonic()
    fault.inject(state)

    def ready_status():
        n = tb.core.read_node(node)
        return next(c.status for c in n.status.conditions if c.type == "Ready"), n.metadata.labels.get(NOT_READY_LABEL)

    wait_for(lambda: ready_status() == ("False", "true"), 30, f"{node} NotReady")
    not_ready_after = time.monotonic() - t0
    fault.revert(state)
    t1 = time.monotonic()
    assert fault.verify_reverted(state) == []
    assert ready_status() == ("True", None)
    fault.revert(state)  # idempotent
    ready_again = time.monotonic() - t1
    # Back from NotReady, the node must still be reachable for metrics-server (KWOK's
    # node-initialize stage used to wipe its addresses: pods there then had no metrics
    # and HPAs over them never scaled; see tools/k8s-testbed/stages/node-addresses.yaml).
    wait_for(lambda: any(a.type == "InternalIP" for a in tb.core.read_node(node).status.addresses or []),
             20, f"{node} to keep an InternalIP address")
    make_deployment(tb, ns, "probe", 1, spread=False, pin_node=node)
    wait_for(lambda: pod_metrics(tb, ns), 120, f"metrics of a pod on {node} after its NotReady spell", step=2.0,
             diagnose=lambda: hpa_diagnostics(tb, ns, ()))
    _record("node-not-ready", not_ready_after_s=round(not_ready_after, 2), ready_again_s=round(ready_again, 2))


def test_zone_loss_not_ready_pods_replaced_in_other_zones(k8s_testbed, ns):
    """The real node lifecycle controller: NotReady nodes, NoExecute taints, pods evicted
    after the 30 s toleration and recreated in the remaining zones."""
    tb = k8s_testbed
    make_deployment(tb, ns, "web", 6)
    target = tb.make_target(namespace=ns)
    fault = target.fault("zone-loss", {"zone": "zone-c", "mode": "not-ready"})
    check = target.check("pods-per-zone", {"deployment": "web", "within": "120s"})
    # the fault is held until the check has decided (it needs the evictions to happen)
    clock = RunClock(started_at=time.time())
    out = {}
    state = fault.prepare()
    th = threading.Thread(target=lambda: out.setdefault("r", check.run(clock)), daemon=True)
    th.start()
    clock.injected_at = time.time()
    fault.inject(state)
    th.join(150)
    fault.revert(state)
    clock.reverted_at = time.time()
    clock.reverted.set()
    clock.stop.set()
    res = out["r"]
    assert res.passed, res.summary
    assert res.measured["lost_zones"] == ["zone-c"] and res.measured["per_zone"]["zone-c"] == 0
    assert fault.verify_reverted(state) == []
    _record("zone-loss not-ready", summary=res.summary)


# -- cpu-stress + HPA (replicas) ---------------------------------------------------------------------
def test_cpu_stress_scales_hpa_out_and_in_and_low_max_fails(k8s_testbed, ns):
    tb = k8s_testbed
    make_deployment(tb, ns, "api", 1, spread=False, labels={"tier": "web"})
    make_deployment(tb, ns, "capped", 1, spread=False, labels={"tier": "web"})
    make_hpa(tb, ns, "api", "api", 1, 4)
    make_hpa(tb, ns, "capped", "capped", 1, 2)
    t0 = time.monotonic()
    def has_cpu_metric(h):
        metrics = tb.autoscaling.read_namespaced_horizontal_pod_autoscaler(h, ns).status.current_metrics or []
        return any(m.resource and m.resource.current and m.resource.current.average_utilization is not None
                   for m in metrics)

    wait_for(lambda: all(has_cpu_metric(h) for h in ("api", "capped")), 180, "HPAs reading CPU metrics", step=1.0,
             diagnose=lambda: hpa_diagnostics(tb, ns, ("api", "capped")))
    first_metric = time.monotonic() - t0
    target = tb.make_target(namespace=ns)
    fault = target.fault("cpu-stress", {"selector": {"tier": "web"}, "millicores": 400})
    scaling = target.check("replicas", {"hpa": "api", "at-least": 4, "at-most": 4, "never-below": 1,
                                        "back-to": 1, "within": "150s"})
    capped = target.check("replicas", {"hpa": "capped", "at-least": 4, "within": "120s"})

    clock = RunClock(started_at=time.time())
    results = {}
    state = fault.prepare()
    fault.inject(state)
    clock.injected_at = time.time()
    threads = [threading.Thread(target=lambda c=c, k=k: results.setdefault(k, c.run(clock)), daemon=True)
               for k, c in (("scaling", scaling), ("capped", capped))]
    for th in threads:
        th.start()
    wait_for(lambda: (tb.autoscaling.read_namespaced_horizontal_pod_autoscaler("api", ns).status.current_replicas or 0) >= 4,
             150, "the HPA to scale api out", step=1.0)
    threads[1].join(150)
    # new pods from the scale-out carry the load as well
    stressed = [p for p in _live(pods_of(tb, ns, "api")) if (p.metadata.annotations or {}).get(USAGE_CPU_ANNOTATION) == "400m"]
    fault.revert(state)
    clock.reverted_at = time.time()
    clock.reverted.set()
    assert fault.verify_reverted(state) == []
    assert not any(USAGE_CPU_ANNOTATION in (p.metadata.annotations or {}) for p in pods_of(tb, ns, "api"))
    threads[0].join(200)
    clock.stop.set()

    ok, low_max = results["scaling"], results["capped"]
    assert ok.passed, ok.summary
    assert ok.measured["peak"] == 4 and ok.measured["seconds_to_scale_in"] is not None
    assert len(stressed) >= 4
    assert not low_max.passed, low_max.summary
    assert low_max.measured["max"] == 2 and "maxReplicas is 2" in low_max.summary
    _record("hpa", first_metric_s=round(first_metric, 1), scaling=ok.summary, capped=low_max.summary)


# -- revert from a fresh process (crash clean-up) -----------------------------------------------------
def _revert_in_new_process(target, kind, params, state):
    code = (
        "import json,sys\n"
        "from harness.targets.kubernetes import KubernetesTarget\n"
        "d=json.loads(sys.argv[1])\n"
        "t=KubernetesTarget.from_description(d['target'])\n"
        "f=t.fault(d['kind'], d['params'])\n"
        "f.revert(d['state']); f.revert(d['state'])\n"
        "print(json.dumps(f.verify_reverted(d['state'])))\n"
    )
    payload = json.dumps({"target": target.describe(), "kind": kind, "params": params, "state": state})
    proc = subprocess.run([sys.executable, "-c", code, payload], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_revert_from_journaled_state_in_fresh_process(k8s_testbed, ns):
    tb = k8s_testbed
    make_deployment(tb, ns, "web", 3, labels={"tier": "web"})
    target = tb.make_target(namespace=ns)
    # The state goes through JSON, as the journal does.
    cases = [
        ("zone-loss", {"zone": "zone-b"}),
        ("node-not-ready", {"selector": {ZONE_LABEL: "zone-c"}, "count": 1}),
        ("cpu-stress", {"selector": {"tier": "web"}, "millicores": 900}),
    ]
    for kind, params in cases:
        fault = target.fault(kind, params)
        state = json.loads(json.dumps(fault.prepare()))
        fault.inject(state)
        if kind == "zone-loss":
            assert _cordoned(tb) == _nodes_in(tb, "zone-b")
        elif kind == "node-not-ready":
            name = state["nodes"][0]["name"]
            assert tb.core.read_node(name).metadata.labels.get(NOT_READY_LABEL) == "true"
        else:
            assert all((p.metadata.annotations or {}).get(USAGE_CPU_ANNOTATION) == "900m" for p in _live(pods_of(tb, ns, "web")))
            # the process "crashes": its follower thread dies with it
            from harness.targets.kubernetes.faults.cpu_stress import _FOLLOWERS

            _FOLLOWERS.pop(state["token"]).set()
        problems = _revert_in_new_process(target, kind, params, state)
        assert problems == [], (kind, problems)
    assert _cordoned(tb) == []
    assert not any(NOT_READY_LABEL in (n.metadata.labels or {}) for n in tb.core.list_node().items)
    assert not any(USAGE_CPU_ANNOTATION in (p.metadata.annotations or {}) for p in pods_of(tb, ns, "web"))


def test_snapshot_reports_nodes_and_deployments(k8s_testbed, ns):
    tb = k8s_testbed
    make_deployment(tb, ns, "web", 2)
    snap = tb.make_target(namespace=ns).snapshot()
    assert snap["nodes_ready"] == 6 and snap["nodes_unschedulable"] == 0
    assert snap["deployment/web/ready"] == 2 and snap["deployment/web/desired"] == 2

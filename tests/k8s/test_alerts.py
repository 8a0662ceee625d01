"""Alerts on the Kubernetes test bed: kwokctl's Prometheus with plans/k8s-testbed.yaml's
rules, an Alertmanager and the recording receiver (tools/k8s-testbed/monitoring.py).

experiments/k8s/zone-not-ready-alert.yaml (expect: plan) passes as an experiment item;
here its counterparts, each on a monitoring stack broken on purpose and restored after:
the live rule's threshold too loose (it cannot fire), the critical route misrouted, the
rule missing (refused before anything runs). And a PodsUnschedulable page for pods that
cannot be placed. Every run uses the target file users use, targets/k8s-testbed.yaml.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from k8s_support import REPO, make_deployment

pytestmark = pytest.mark.k8s

TARGET = REPO / "targets" / "k8s-testbed.yaml"
EXPERIMENT = REPO / "experiments" / "k8s" / "zone-not-ready-alert.yaml"
PROM, AM = "http://127.0.0.1:29090", "http://127.0.0.1:29093"


def _cluster_dir() -> Path:
    from tests.support.k8s_testbed import cluster_name

    return Path(os.environ.get("KWOK_WORKDIR", str(Path.home() / ".kwok"))) / "clusters" / cluster_name()


def _alerting_rules() -> dict[str, str]:
    import json

    with urllib.request.urlopen(f"{PROM}/api/v1/rules", timeout=5) as r:
        data = json.loads(r.read())
    return {r["name"]: r["query"] for g in data["data"]["groups"] for r in g["rules"] if r.get("type") == "alerting"}


def _wait(what: str, ok, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ok():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout}s")


@contextmanager
def live_rules(change):
    """The test bed's live rules file changed, Prometheus reloaded (SIGHUP); restored after."""
    rules = _cluster_dir() / "monitoring" / "rules.yml"
    original = rules.read_text()
    doc = yaml.safe_load(original)
    change(doc)
    pid = int((_cluster_dir() / "pids" / "prometheus.pid").read_text().strip())
    rules.write_text(yaml.safe_dump(doc, sort_keys=False))
    os.kill(pid, signal.SIGHUP)
    try:
        yield
    finally:
        rules.write_text(original)
        os.kill(pid, signal.SIGHUP)
        want = {r["alert"]: r["expr"] for g in yaml.safe_load(original)["groups"] for r in g["rules"] if "alert" in r}
        _wait("the original rules to be live again", lambda: _alerting_rules() == want)


@contextmanager
def live_alertmanager(change):
    conf = _cluster_dir() / "monitoring" / "alertmanager.yml"
    original = conf.read_text()
    doc = yaml.safe_load(original)
    change(doc)
    conf.write_text(yaml.safe_dump(doc, sort_keys=False))
    urllib.request.urlopen(urllib.request.Request(f"{AM}/-/reload", method="POST"), timeout=10).read()
    try:
        yield
    finally:
        conf.write_text(original)
        urllib.request.urlopen(urllib.request.Request(f"{AM}/-/reload", method="POST"), timeout=10).read()


def _target_file(tb, tmp_path: Path) -> Path:
    """targets/k8s-testbed.yaml as users have it, on this session's cluster (its name may
    differ: HARNESS_K8S_TEST_CLUSTER)."""
    doc = yaml.safe_load(TARGET.read_text())
    doc.update({"kubeconfig": tb.kubeconfig, "context": tb.context, "allowed-contexts": [tb.context],
                "plan": str(REPO / "plans" / "k8s-testbed.yaml")})
    path = tmp_path / "k8s-testbed.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _run(tb, text: str, tmp_path: Path):
    from harness.engine.run import Run
    from harness.experiment.loader import load_experiment
    from harness.targets import resolve_target

    target = _target_file(tb, tmp_path)
    path = tmp_path / "experiment.yaml"
    path.write_text(text.replace("target: targets/k8s-testbed.yaml", f"target: {target}"))
    exp = load_experiment(path)
    result = Run(exp, resolve_target(str(target), None), report_dir=tmp_path / "reports", lock_wait=900).execute()
    print(f"\n[measured] {result.verdict.status}: {' | '.join(result.verdict.reasons)}")
    return result


def _quiet(alert: str) -> None:
    def quiet() -> bool:
        import json

        with urllib.request.urlopen(f"{AM}/api/v2/alerts?filter=alertname%3D%22{alert}%22", timeout=5) as r:
            return json.loads(r.read()) == []

    _wait(f"{alert} to be resolved from an earlier test", quiet, 90)


def _experiment_text() -> str:
    return EXPERIMENT.read_text()


def test_monitoring_is_up_with_the_plans_rules(k8s_testbed):
    rules = _alerting_rules()
    assert rules["ZoneNodesNotReady"] == "max(node_collector_unhealthy_nodes_in_zone) > 0", rules
    assert "PodsUnschedulable" in rules
    with urllib.request.urlopen(f"{PROM}/api/v1/query?query=count(node_collector_zone_size)", timeout=5) as r:
        assert b'"value"' in r.read()  # the controller-manager's zone gauges are scraped


def test_a_threshold_too_loose_to_fire_fails_the_run(k8s_testbed, tmp_path):
    def loosen(doc):
        for g in doc["groups"]:
            for r in g["rules"]:
                if r.get("alert") == "ZoneNodesNotReady":
                    r["expr"] = "max(node_collector_unhealthy_nodes_in_zone) > 100"

    _quiet("ZoneNodesNotReady")
    with live_rules(loosen):
        _wait("the loosened rule", lambda: _alerting_rules()["ZoneNodesNotReady"].endswith("> 100"))
        result = _run(k8s_testbed, _experiment_text(), tmp_path)
    assert result.verdict.status == "failed", result.verdict
    fires = next(c for c in result.checks if c.kind == "alert-fires")
    assert not fires.passed and "alert ZoneNodesNotReady did not fire within 14" in fires.summary, fires.summary


def test_a_misrouted_critical_alert_fails_the_run(k8s_testbed, tmp_path):
    def misroute(doc):
        for r in doc["route"]["routes"]:
            if r["matchers"] == ['severity="critical"']:
                r["receiver"] = "warning"

    _quiet("ZoneNodesNotReady")
    with live_alertmanager(misroute):
        result = _run(k8s_testbed, _experiment_text(), tmp_path)
    assert result.verdict.status == "failed", result.verdict
    fires = next(c for c in result.checks if c.kind == "alert-fires")
    assert not fires.passed, fires.summary
    assert fires.measured["fired_after_s"] is not None, fires.measured  # it fired: the route is wrong
    assert "but no notification reached receiver 'critical'" in fires.summary, fires.summary


def test_a_run_is_refused_when_the_live_rules_lack_the_plans_alert(k8s_testbed, tmp_path):
    def drop(doc):
        for g in doc["groups"]:
            g["rules"] = [r for r in g["rules"] if r.get("alert") != "ZoneNodesNotReady"]

    with live_rules(drop):
        _wait("the rule to be gone", lambda: "ZoneNodesNotReady" not in _alerting_rules())
        (tmp_path / "e.yaml").write_text(_experiment_text().replace(
            "target: targets/k8s-testbed.yaml", f"target: {_target_file(k8s_testbed, tmp_path)}"))
        res = subprocess.run([str(Path(sys.executable).parent / "harness"), "run", "--report-dir", str(tmp_path),
                              str(tmp_path / "e.yaml")], capture_output=True, text=True, timeout=120, cwd=REPO)
    out = res.stdout + res.stderr
    assert res.returncode == 3, out
    assert "does not define ZoneNodesNotReady" in out and " inject " not in out, out
    assert "Traceback" not in out


def test_pods_that_cannot_be_placed_page_the_warning_receiver(k8s_testbed, ns, tmp_path):
    """web pinned to zone-a, zone-a drained: its pods stay Pending; PodsUnschedulable
    (seed 002 §7.2 "Pod Pending", warning) fires and reaches the warning receiver."""
    make_deployment(k8s_testbed, ns, "web", 2, spread=False, pin_zone="zone-a")
    _quiet("PodsUnschedulable")
    text = f"""\
title: zone-a drained under a web pinned to it; its pods cannot be placed
target: targets/k8s-testbed.yaml
method:
  - {{fault: zone-loss, zone: a, mode: drain, duration: 25s}}
abort-when:
  - {{elapsed: "> 5m"}}
expect:
  - alert-fires: {{alert: PodsUnschedulable, within: 25s}}
  - alert-resolves: {{alert: PodsUnschedulable, within: 40s}}
"""
    result = _run(k8s_testbed, text, tmp_path)
    by = {c.kind: c for c in result.checks}
    assert by["alert-fires"].passed, by["alert-fires"].summary
    assert by["alert-fires"].measured["receiver"] == "warning"
    assert by["alert-resolves"].passed, by["alert-resolves"].summary

"""The allow-list: a context not on it is refused and nothing in the cluster changes."""
from __future__ import annotations

import os

import pytest

from harness.errors import EnvironmentNotReady, TargetRefused
from harness.targets.kubernetes import KubernetesTarget

from k8s_support import make_deployment, pods_of

pytestmark = pytest.mark.k8s


def _cluster_fingerprint(tb, ns):
    nodes = {
        n.metadata.name: (bool(n.spec.unschedulable), dict(n.metadata.labels or {}))
        for n in tb.core.list_node().items
    }
    pods = sorted((p.metadata.uid, dict(p.metadata.annotations or {})) for p in pods_of(tb, ns, "web"))
    return nodes, pods


def test_refused_context_changes_nothing(k8s_testbed, ns):
    tb = k8s_testbed
    make_deployment(tb, ns, "web", 3)
    before = _cluster_fingerprint(tb, ns)
    refused = tb.make_target(**{"allowed-contexts": ["kwok-production", "staging"], "namespace": ns})

    with pytest.raises(TargetRefused) as info:
        refused.preflight()
    assert tb.context in str(info.value) and "allowed-contexts" in str(info.value)

    attempts = {
        "pod-kill": {"selector": {"app": "web"}, "count": 1},
        "node-drain": {"selector": {"topology.kubernetes.io/zone": "zone-a"}},
        "zone-loss": {"zone": "zone-a"},
        "node-not-ready": {"selector": {"topology.kubernetes.io/zone": "zone-b"}},
        "cpu-stress": {"selector": {"app": "web"}, "millicores": 500},
    }
    for kind, params in attempts.items():
        with pytest.raises(TargetRefused):
            refused.fault(kind, params).prepare()

    # A journaled state from an allowed target, replayed through the refused one (as a
    # crashed run's clean-up would): still refused, before any call.
    allowed = tb.make_target(namespace=ns)
    for kind, params in attempts.items():
        state = allowed.fault(kind, params).prepare()  # prepare has no side effects
        fault = refused.fault(kind, params)
        with pytest.raises(TargetRefused):
            fault.inject(state)
        if kind != "pod-kill":  # pod-kill's revert has nothing to do, so nothing to refuse
            with pytest.raises(TargetRefused):
                fault.revert(state)
    with pytest.raises(TargetRefused):
        refused.snapshot() or refused.api_client  # noqa: B018
    assert _cluster_fingerprint(tb, ns) == before


def test_empty_allow_list_refuses_everything(k8s_testbed):
    target = k8s_testbed.make_target(**{"allowed-contexts": []})
    with pytest.raises(TargetRefused, match="allowed: none"):
        target.preflight()


def test_unknown_context_and_missing_kubeconfig(k8s_testbed, tmp_path):
    with pytest.raises(EnvironmentNotReady, match="not in"):
        k8s_testbed.make_target(context="nope", **{"allowed-contexts": ["nope"]}).preflight()
    with pytest.raises(EnvironmentNotReady, match="does not exist"):
        k8s_testbed.make_target(kubeconfig=str(tmp_path / "none.yaml")).preflight()


def test_chaosk8s_follows_the_target_not_the_environment(k8s_testbed, ns, tmp_path, monkeypatch):
    """chaostoolkit-kubernetes reads KUBECONFIG from the process: the target must point it
    at its own cluster, whatever the environment says."""
    tb = k8s_testbed
    make_deployment(tb, ns, "web", 2)
    bogus = tmp_path / "other.yaml"
    bogus.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: prod\nclusters:\n- name: prod\n  cluster:\n"
        "    server: https://192.0.2.1:6443\ncontexts:\n- name: prod\n  context:\n    cluster: prod\n"
        "    user: prod\nusers:\n- name: prod\n  user:\n    token: x\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(bogus))
    target = tb.make_target(namespace=ns)
    fault = target.fault("pod-kill", {"selector": {"app": "web"}, "count": 1})
    state = fault.prepare()
    fault.inject(state)
    victim = state["victims"][0]["uid"]
    assert victim not in {p.metadata.uid for p in pods_of(tb, ns, "web") if not p.metadata.deletion_timestamp}
    assert os.environ["KUBECONFIG"] == str(bogus)  # restored afterwards


def test_describe_round_trip(k8s_testbed):
    target = k8s_testbed.make_target(**{"prometheus-url": "http://127.0.0.1:9090", "zone-map": {"a": "zone-a"}})
    target.preflight()
    again = KubernetesTarget.from_description(target.describe())
    assert again.describe() == target.describe()
    assert again.context == k8s_testbed.context

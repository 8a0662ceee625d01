"""The Kubernetes test bed for ``pytest -m k8s``: built (or taken from the cache),
started once per session, stopped at the end.

If the test bed cannot be built or started, every k8s test FAILS with the build's
output: these tests are never skipped silently.

The test bed is shared with the experiments in experiments/k8s (one cluster per
session, see tests/support/k8s_testbed.py); every test works in a namespace of its own.
"""
from __future__ import annotations

import uuid

import pytest
from k8s_support import Testbed, restore_nodes


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "k8s: needs the local Kubernetes test bed (tools/k8s-testbed), built on first use"
    )


@pytest.fixture(scope="session")
def k8s_testbed(request):
    """The session's test bed (tests.support.k8s_testbed: built if needed, started once,
    stopped at the end of the session) and clients for it."""
    try:
        import chaosk8s  # noqa: F401
        import kubernetes  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"the k8s tests need kubernetes and chaostoolkit-kubernetes: {exc}", pytrace=False)
    from kubernetes import client, config

    from tests.support.k8s_testbed import session_testbed
    from harness.targets.kubernetes import KubernetesTarget

    info = session_testbed(request.config)
    api = config.new_client_from_config(config_file=info.kubeconfig, context=info.context)
    target = KubernetesTarget.from_config(
        {"kubeconfig": info.kubeconfig, "context": info.context,
         "allowed-contexts": [info.context], "namespace": "default"}
    )
    target.preflight()
    yield Testbed(
        kubeconfig=info.kubeconfig,
        context=info.context,
        target=target,
        core=client.CoreV1Api(api),
        apps=client.AppsV1Api(api),
        policy=client.PolicyV1Api(api),
        autoscaling=client.AutoscalingV2Api(api),
        timings=info.timings,
    )


@pytest.fixture
def ns(k8s_testbed):
    """A fresh namespace per test, deleted afterwards; nodes restored afterwards too."""
    from kubernetes import client

    name = f"t-{uuid.uuid4().hex[:8]}"
    k8s_testbed.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # the default ServiceAccount is not needed by KWOK pods, but admission waits for it
    yield name
    k8s_testbed.core.delete_namespace(name, propagation_policy="Background")
    restore_nodes(k8s_testbed)



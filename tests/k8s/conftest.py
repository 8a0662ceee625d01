"""The Kubernetes test bed for ``pytest -m k8s``: built (or taken from the cache),
started once per session, stopped at the end.

If the test bed cannot be built or started, every k8s test FAILS with the build's
output: these tests are never skipped silently.

Environment:
  HARNESS_K8S_CACHE        binary cache root (see tools/k8s-testbed/build.sh)
  HARNESS_K8S_TEST_CLUSTER cluster name used by the tests (default rh-pytest)
"""
from __future__ import annotations

import os
import time
import uuid

import pytest
from k8s_support import CLUSTER, Testbed, _run_script, restore_nodes


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "k8s: needs the local Kubernetes test bed (tools/k8s-testbed), built on first use"
    )


@pytest.fixture(scope="session")
def k8s_testbed():
    try:
        import chaosk8s  # noqa: F401
        import kubernetes  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"the k8s tests need kubernetes and chaostoolkit-kubernetes: {exc}", pytrace=False)
    timings = {}
    t = time.monotonic()
    _run_script("build.sh", timeout=3600)
    timings["build_s"] = time.monotonic() - t
    t = time.monotonic()
    kubeconfig = _run_script("up.sh", "--name", CLUSTER, timeout=600)
    timings["up_s"] = time.monotonic() - t
    try:
        if not kubeconfig or not os.path.exists(kubeconfig):
            pytest.fail(f"up.sh did not print a kubeconfig path (got {kubeconfig!r})", pytrace=False)
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=kubeconfig, context=f"kwok-{CLUSTER}")
        from harness.targets.kubernetes import KubernetesTarget

        target = KubernetesTarget.from_config(
            {
                "kubeconfig": kubeconfig,
                "context": f"kwok-{CLUSTER}",
                "allowed-contexts": [f"kwok-{CLUSTER}"],
                "namespace": "default",
            }
        )
        target.preflight()
        yield Testbed(
            kubeconfig=kubeconfig,
            context=f"kwok-{CLUSTER}",
            target=target,
            core=client.CoreV1Api(api),
            apps=client.AppsV1Api(api),
            policy=client.PolicyV1Api(api),
            autoscaling=client.AutoscalingV2Api(api),
            timings=timings,
        )
    finally:
        _run_script("down.sh", "--name", CLUSTER, timeout=120)


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



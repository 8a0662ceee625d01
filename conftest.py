"""This repository's own test run: the local Kubernetes test bed for experiment items.

The harness's pytest plugin asks, through its ``pytest_harness_prepare_target`` hook,
that a non-lab target be ready before an experiment item runs on it. Here, when the
target is the local KWOK test bed (targets/k8s-testbed.yaml), that means building
(cached) and starting it once for the session (tests/support/k8s_testbed.py). Users
pointing the harness at their own cluster need none of this.
"""
from __future__ import annotations

from pathlib import Path

import pytest


def pytest_harness_prepare_target(config, spec: str) -> None:
    text = Path(spec).read_text() if Path(spec).exists() else ""
    if "testbed" in spec or "rh-testbed" in text:
        from tests.support.k8s_testbed import session_testbed

        session_testbed(config)


def _on_testbed(item) -> bool:
    return item.get_closest_marker("k8s") is not None


def pytest_collection_modifyitems(session, config, items) -> None:
    """Every item on the Kubernetes test bed (tests/k8s and experiments/k8s) runs first,
    together; the test bed is stopped right after the last of them. Collected in path
    order, experiments/k8s came after the lab's items, so the test bed's control plane
    (apiserver, controller-manager, scheduler, etcd, metrics-server, KWOK) kept taking
    CPU from the lab for the whole session on a 2-core machine. The sort is stable:
    within each group the order stays the collection order."""
    items.sort(key=lambda item: 0 if _on_testbed(item) else 1)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield  # the item's own fixtures first (a test's namespace is deleted through the test bed)
    if _on_testbed(item) and (nextitem is None or not _on_testbed(nextitem)):
        from tests.support import k8s_testbed

        if "info" in k8s_testbed._SESSION:
            print(f"\n[k8s-testbed] last item on the test bed done: stopping it ({item.nodeid})")
            k8s_testbed.stop()

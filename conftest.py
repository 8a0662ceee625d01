"""This repository's own test run: the local Kubernetes test bed for experiment items.

The harness's pytest plugin asks, through its ``pytest_harness_prepare_target`` hook,
that a non-lab target be ready before an experiment item runs on it. Here, when the
target is the local KWOK test bed (targets/k8s-testbed.yaml), that means building
(cached) and starting it once for the session (tests/support/k8s_testbed.py). Users
pointing the harness at their own cluster need none of this.
"""
from __future__ import annotations

from pathlib import Path


def pytest_harness_prepare_target(config, spec: str) -> None:
    text = Path(spec).read_text() if Path(spec).exists() else ""
    if "testbed" in spec or "rh-testbed" in text:
        from tests.support.k8s_testbed import session_testbed

        session_testbed(config)

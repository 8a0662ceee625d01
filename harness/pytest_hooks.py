"""Hooks the harness's pytest plugin offers to conftest.py files and other plugins."""
from __future__ import annotations

import pytest


@pytest.hookspec
def pytest_harness_prepare_target(config: pytest.Config, spec: str) -> None:
    """Called once per session before the first experiment item runs against the target
    file ``spec`` (not the lab): bring up what that target needs (a local test cluster,
    a port-forward...). Raise :class:`harness.errors.EnvironmentNotReady` to fail the
    items with its message."""

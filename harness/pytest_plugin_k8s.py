"""Kubernetes targets for experiment items: make sure the test bed is up once per session."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.targets import resolve_target

_READY: dict[str, object] = {}


def ensure_target_ready(config: pytest.Config, spec: str):
    """Resolve a target file; when it names the local KWOK test bed, bring the test
    bed up for the session first (tools/k8s-testbed)."""
    if spec in _READY:
        return _READY[spec]
    text = Path(spec).read_text() if Path(spec).exists() else ""
    if "testbed" in spec or "rh-testbed" in text:
        from harness.k8s_testbed import session_testbed

        session_testbed(config)
    target = resolve_target(spec)
    _READY[spec] = target
    return target

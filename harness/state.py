"""Where the harness keeps its machine-wide state: fault journals, the run lock, and
(by default) the local lab's run directory. Not the lab's: every target's runs share it."""
from __future__ import annotations

import os
from pathlib import Path


def state_root() -> Path:
    """Root of the harness's machine-wide state (``HARNESS_STATE_DIR`` overrides it)."""
    env = os.environ.get("HARNESS_STATE_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/resilience-harness")
    return Path.home() / ".local" / "state" / "resilience-harness"

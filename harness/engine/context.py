"""The live run of this process (runs never overlap: the run lock guarantees it)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.engine.run import Run

_current: "Run | None" = None


def set_current(run: "Run | None") -> None:
    global _current
    _current = run


def current() -> "Run":
    if _current is None:
        raise RuntimeError("no harness run is active in this process")
    return _current


def current_or_none() -> "Run | None":
    return _current

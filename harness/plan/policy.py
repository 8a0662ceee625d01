"""The plan's chaos policy applied to a run (filled in below)."""
from __future__ import annotations


def enforce(run) -> None:
    return None


def after(run, result):
    return None

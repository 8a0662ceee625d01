"""Shared bits of the unit tests."""
from __future__ import annotations

from harness.targets.base import Target


class NoTarget(Target):
    """A target with no faults or checks: for runs that inject nothing."""

    kind = "none"

    def describe(self):
        return {"kind": "none"}

    @classmethod
    def from_description(cls, d):
        return cls()

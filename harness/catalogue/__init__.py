"""The catalogue: every fault and check an experiment may name, target-independent.

Names, parameter schemas (JSON Schema) and what each verifies. Experiments are
validated against it when loaded; each target then says which kinds it implements
(:mod:`harness.targets.registry`). Plugins add kinds with :func:`add_fault_kind` /
:func:`add_check_kind` from their entry-point module.
"""
from __future__ import annotations

from harness.catalogue.checks import CATALOGUE as _CHECKS
from harness.catalogue.faults import CATALOGUE as _FAULTS
from harness.catalogue.faults import DURATION, SELECTOR, FaultKind

CheckKind = FaultKind


def fault_kinds() -> dict[str, FaultKind]:
    """Every fault kind, built in and from plugins."""
    from harness.targets.registry import load_plugins

    load_plugins()
    return _FAULTS


def check_kinds() -> dict[str, CheckKind]:
    """Every check kind, built in and from plugins."""
    from harness.targets.registry import load_plugins

    load_plugins()
    return _CHECKS


def add_fault_kind(kind: FaultKind) -> None:
    if kind.name in _FAULTS and _FAULTS[kind.name] != kind:
        raise ValueError(f"fault kind {kind.name!r} is already in the catalogue")
    _FAULTS[kind.name] = kind


def add_check_kind(kind: CheckKind) -> None:
    if kind.name in _CHECKS and _CHECKS[kind.name] != kind:
        raise ValueError(f"check kind {kind.name!r} is already in the catalogue")
    _CHECKS[kind.name] = kind


__all__ = ["DURATION", "SELECTOR", "FaultKind", "CheckKind", "fault_kinds", "check_kinds",
           "add_fault_kind", "add_check_kind"]

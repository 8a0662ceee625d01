"""What every fault is: prepared, journaled, injected, reverted.

The life of a fault, driven by :class:`harness.engine.journal.FaultJournal`:

1. ``prepare()`` decides everything needed to act *and to undo* (victims, names,
   previous values) without touching the system, and returns it as JSON-able state.
2. The journal writes that state to disk (fsync) **before** anything acts.
3. ``inject(state)`` acts.
4. ``revert(state)`` undoes it. It must be idempotent and must work in a new
   process from the journaled state alone (after a crash, ``harness cleanup``
   rebuilds the target from its description and calls it).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from harness.targets.base import Target

State = dict[str, Any]


class Fault(ABC):
    """One fault of the catalogue, implemented for one kind of target."""

    kind: ClassVar[str]  # catalogue name, e.g. "pod-kill"

    def __init__(self, target: "Target", params: dict[str, Any]):
        self.target = target
        self.params = params

    def problems(self) -> list[str]:
        """What this target cannot do with these parameters, found without touching the
        system (a link that does not exist, a mode the target lacks). Each problem says
        what the target offers instead. Checked by ``validate --target``, ``--dry-run``
        and preflight, before anything runs."""
        return []

    def preview(self) -> str | None:
        """``--dry-run`` on a live target: what this fault would act on right now (e.g.
        "replicas api-1 (zone a)"). Raise InvalidInput when the selector matches nothing
        or more than the step allows."""
        return None

    def prepare(self) -> State:
        """Decide what to do (no side effects). Returned state is journaled."""
        return {}

    @abstractmethod
    def inject(self, state: State) -> None:
        """Act. Raise :class:`harness.errors.FaultError` if it cannot."""

    @abstractmethod
    def revert(self, state: State) -> None:
        """Undo. Idempotent; safe in a fresh process after a crash."""

    def verify_reverted(self, state: State) -> list[str]:
        """Problems still visible after revert (empty when clean)."""
        return []

    def describe(self) -> str:
        """One line for logs, reports and ``--dry-run``."""
        args = " ".join(f"{k}={v}" for k, v in self.params.items() if k != "duration")
        return f"{self.kind} {args}".strip()

"""The fault journal: every fault is on disk before it acts, until it is reverted.

One append-only JSON-lines file per run under ``<state>/journal/``. Records:
``prepared`` (fault kind, params, target description, revert state; fsynced before
``inject`` is called), ``injected``, ``reverted`` / ``revert-failed``. A fault with
``prepared`` but no ``reverted`` is *pending*: after a crash (SIGKILL, power loss)
``harness cleanup`` or the next run's preflight rebuilds the target from its
description and reverts it. A run whose faults are all reverted deletes its file.
"""
from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import FaultError
from harness.faults.base import Fault
from harness.state import state_root

log = logging.getLogger(__name__)


def journal_dir() -> Path:
    d = state_root() / "journal"
    d.mkdir(parents=True, exist_ok=True)
    return d


@dataclass
class Entry:
    fault_id: str
    kind: str
    params: dict[str, Any]
    target: dict[str, Any]
    state: dict[str, Any]
    description: str
    injected_at: float | None = None
    reverted_at: float | None = None
    file: Path | None = None


class FaultJournal:
    def __init__(self, run_id: str):
        self.run_id = run_id
        self.path = journal_dir() / f"{run_id}.jsonl"
        self.live: dict[str, tuple[Fault, Entry]] = {}

    def _append(self, record: dict) -> None:
        record["at"] = time.time()
        _append_durably(self.path, record)

    def inject(self, fault: Fault) -> Entry:
        """Prepare, journal (durably), then inject. Returns the journal entry."""
        state = fault.prepare()
        entry = Entry(
            fault_id=uuid.uuid4().hex[:12], kind=fault.kind, params=fault.params,
            target=fault.target.describe(), state=state, description=fault.describe(),
        )
        self._append({"event": "prepared", "id": entry.fault_id, "kind": entry.kind, "params": entry.params,
                      "target": entry.target, "state": state, "description": entry.description})
        self.live[entry.fault_id] = (fault, entry)
        fault.inject(state)
        entry.injected_at = time.time()
        self._append({"event": "injected", "id": entry.fault_id})
        return entry

    def revert(self, fault_id: str) -> Entry | None:
        """Revert one fault (idempotent: a reverted fault is not reverted twice)."""
        item = self.live.pop(fault_id, None)
        if item is None:
            return None
        fault, entry = item
        try:
            fault.revert(entry.state)
        except BaseException as exc:
            # Ctrl-C or SystemExit mid-revert too: the fault stays live, to be reverted again.
            self.live[fault_id] = item
            if not isinstance(exc, Exception):
                raise
            self._append({"event": "revert-failed", "id": fault_id, "error": str(exc)})
            raise FaultError(f"could not revert {entry.description}: {exc} (run `harness cleanup`)") from exc
        entry.reverted_at = time.time()
        self._append({"event": "reverted", "id": fault_id})
        return entry

    def revert_all(self) -> list[Entry]:
        """Revert every live fault, newest first; keep going past failures."""
        done, errors = [], []
        for fault_id in reversed(list(self.live)):
            try:
                e = self.revert(fault_id)
                if e:
                    done.append(e)
            except FaultError as exc:
                errors.append(str(exc))
        if errors:
            raise FaultError("; ".join(errors))
        return done

    def close(self) -> None:
        """Delete the journal file if nothing is pending."""
        if not self.live and self.path.exists():
            self.path.unlink()


def pending() -> list[Entry]:
    """Faults journaled by any run (this or a dead one) and not reverted."""
    out = []
    for path in sorted(journal_dir().glob("*.jsonl")):
        entries: dict[str, Entry] = {}
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a torn last line after a crash
            if rec.get("event") == "prepared":
                entries[rec["id"]] = Entry(rec["id"], rec["kind"], rec["params"], rec["target"],
                                           rec["state"], rec.get("description", rec["kind"]), file=path)
            elif rec.get("event") == "injected" and rec["id"] in entries:
                entries[rec["id"]].injected_at = rec["at"]
            elif rec.get("event") == "reverted":
                entries.pop(rec["id"], None)
        if not entries:
            path.unlink(missing_ok=True)
        out.extend(entries.values())
    return out


def _append_durably(path: Path, record: dict) -> None:
    """One JSON line, on disk (fsync) before the caller goes on."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _mark(entry: Entry, by: str, why: str | None = None) -> None:
    assert entry.file is not None
    record = {"event": "reverted", "id": entry.fault_id, "at": time.time(), "by": by}
    if why:
        record["why"] = why
    _append_durably(entry.file, record)


def forget(progress=lambda msg: None) -> list[Entry]:
    """Drop every pending fault from the journal *without* reverting it: for faults
    whose target cannot be reached any more and that a person has checked by hand."""
    dropped = []
    for entry in pending():
        progress(f"forgetting {entry.description} (target {entry.target}); state was {entry.state}")
        _mark(entry, "forget")
        dropped.append(entry)
    pending()
    return dropped


#: how long cleanup waits, after reverting a leftover fault, for the target to show it
#: reverted (e.g. Patroni re-pointing its replicas after a crashed member restarts)
CONVERGE_TIMEOUT = 120.0


def _converge(fault, state, description: str, progress, timeout: float) -> list[str]:
    """Poll ``verify_reverted`` until it is clean or ``timeout``; say what it waits for."""
    deadline = time.time() + timeout
    said = 0.0
    while True:
        problems = fault.verify_reverted(state)
        if not problems or time.time() >= deadline:
            return problems
        if time.time() - said >= 5.0:
            left = deadline - time.time()
            progress(f"  waiting for the target to converge ({'; '.join(problems)}; up to {left:.0f}s more)")
            said = time.time()
        time.sleep(1.0)


def recover(progress=lambda msg: None, converge: float = CONVERGE_TIMEOUT) -> tuple[list[Entry], list[str]]:
    """Revert every pending fault left by crashed runs. Returns (reverted, errors).

    After each revert it waits (up to ``converge`` seconds, with progress) until the
    target shows the fault gone: a system still settling is not a failed revert.
    A fault whose target no longer exists (a lab taken down, a deleted local test-bed
    cluster) died with it: it is recorded as such instead of blocking every later run."""
    from harness.targets import target_from_description, target_gone

    reverted, errors = [], []
    for entry in reversed(pending()):
        why = target_gone(entry.target)
        if why:
            progress(f"leftover fault {entry.description}: {why}; nothing to revert")
            _mark(entry, "target-gone", why)
            reverted.append(entry)
            continue
        progress(f"reverting leftover fault: {entry.description}")
        try:
            target = target_from_description(entry.target)
            fault = target.fault(entry.kind, entry.params)
            fault.revert(entry.state)
            problems = _converge(fault, entry.state, entry.description, progress, converge)
            if problems:
                raise FaultError("; ".join(problems) + f" (still, {converge:.0f}s after the revert)")
        except Exception as exc:  # noqa: BLE001 - report and keep going
            errors.append(f"{entry.description}: {exc}")
            continue
        _mark(entry, "cleanup")
        reverted.append(entry)
    pending()  # drops files that are now fully reverted
    return reverted, errors

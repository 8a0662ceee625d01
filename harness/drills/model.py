"""Typed drill objects. Dicts stop at the loader (harness.drills.loader)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.load.generator import LoadSpec
from harness.quantities import Objective

DRIVERS = ("pgbackrest", "command")
PICKS = ("latest", "random", "time")
RECOVERIES = ("end-of-wal", "backup-end", "time")
BACKUP_TYPES = ("full", "diff", "incr", "any")


@dataclass(frozen=True)
class TableCheck:
    """Row count and checksum of ``table`` in the restored copy against the source as of
    the restore point: rows whose ``as_of`` column is at or before the point when the
    table keeps growing, the whole table otherwise."""

    table: str
    as_of: str = ""  # a timestamp column ("" = compare the whole table)
    where: str = ""  # file:line:col


@dataclass(frozen=True)
class Invariant:
    """A query on the restored copy whose single value must satisfy ``expect``."""

    name: str
    query: str
    expect: Objective
    where: str = ""


@dataclass(frozen=True)
class Checks:
    tables: tuple[TableCheck, ...] = ()
    invariants: tuple[Invariant, ...] = ()
    read_write: bool = True
    smoke: bool = True  # pgbackrest: a sample-service replica; command: smoke-command
    smoke_command: str = ""


@dataclass(frozen=True)
class BackupChoice:
    pick: str = "latest"  # latest | random | time
    window: float | None = None  # random (and latest): only backups that finished this recently
    time: str = ""  # pick=time: ISO 8601 or "-30s" (relative to the drill's start)
    type: str = "any"  # full | diff | incr | any
    recovery: str = ""  # end-of-wal | backup-end | time ("" = the pick's default)
    seed: int | None = None  # random: make the choice reproducible

    @property
    def effective_recovery(self) -> str:
        if self.pick == "time":
            return "time"
        if self.recovery:
            return self.recovery
        # latest: "restore now" replays every archived WAL segment; random: the backup itself
        return "end-of-wal" if self.pick == "latest" else "backup-end"


@dataclass(frozen=True)
class DrillTarget:
    """An RTO or RPO target: seconds, and where it came from (plan or drill file)."""

    seconds: float | None
    text: str
    source: str  # "plan plans/lab.yaml (seed 004 §7 ...)" or "drill file"


@dataclass(frozen=True)
class CommandSpec:
    """The command driver: the team's own commands, run by ``bash -c`` with a time limit."""

    find: str = ""  # prints the backup to restore (becomes $DRILL_BACKUP)
    prepare: tuple[str, ...] = ()
    restore: tuple[str, ...] = ()
    cleanup: tuple[str, ...] = ()
    timeout: float = 600.0
    source_url: str = ""
    restored_url: str = ""


@dataclass
class Drill:
    path: Path
    title: str
    description: str
    driver: str
    backup: BackupChoice
    checks: Checks
    rto: Any  # "plan" or seconds (resolved to Target at run time)
    rpo: Any
    plan_path: str  # "" = the lab's plan (plans/lab.yaml)
    load: LoadSpec | None
    source_slo: Any  # "plan" or {sli: Objective}
    rpo_table: str = "orders"
    rpo_column: str = "created_at"
    sabotage: tuple[str, ...] = ()
    timeout: float = 1800.0
    pgbackrest_config: str = ""
    pgbackrest_stanza: str = ""
    flush_wal: bool = False
    command: CommandSpec | None = None
    test_bed: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem

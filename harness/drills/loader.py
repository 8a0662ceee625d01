"""Load and validate drill files (drills/*.yaml): every problem with file:line:col.

``load_drill(path)`` returns a :class:`~harness.drills.model.Drill` or raises
:class:`InvalidInput` listing every problem found, nothing run. The format is
documented in docs/drills.md and by the files in drills/.
"""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.drills.model import (
    BACKUP_TYPES, DRIVERS, PICKS, RECOVERIES, BackupChoice, Checks, CommandSpec, Drill, Invariant,
    TableCheck,
)
from harness.errors import InvalidInput, Problem
from harness.experiment.yamlsafe import Positions, load_document, position
from harness.load.generator import LoadSpec
from harness.quantities import parse_duration, parse_objective
from harness.sli.vocabulary import CLIENT_SLIS

TOP = {
    "title": "one line: what the drill proves",
    "description": "free text",
    "driver": "pgbackrest (the lab's repository) or command (your own restore commands)",
    "plan": "operations plan whose backup: rto/rpo are the targets (default plans/lab.yaml)",
    "targets": "{rto: plan | 30m, rpo: plan | 5m}",
    "backup": "{pick: latest | random | time, window: 7d, time: ..., type: full, recovery: ...}",
    "checks": "{tables: [...], invariants: [...], read-write: true, smoke: true}",
    "rpo-from": "{table: orders, column: created_at}: the timestamped rows RPO is measured from",
    "load": "Locust load on the source during the drill ({locustfile, users, spawn-rate, warmup}) or false",
    "source-slo": "plan, or {availability: '>= 99%', latency_p95: '< 500ms'}: the source's SLOs during the drill",
    "sabotage": "SQL run on the restored copy before the checks (counterpart tests prove the checks catch it)",
    "timeout": "the whole drill's limit (default 30m)",
    "pgbackrest": "{config: FILE, stanza: NAME, flush-wal: false} (default: the lab's repository)",
    "command": "{find, prepare, restore, cleanup, timeout, source-url, restored-url} for driver: command",
    "test-bed": "throwaway databases pytest starts for this drill (e.g. {mariadb: {seed: FILE}})",
    "tags": "list of words",
}
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
WINDOW_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
RELATIVE = re.compile(r"^\s*-\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def parse_window(value: Any) -> float:
    """``7d`` -> seconds; windows may be longer than a week (``90d``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    m = WINDOW.match(str(value))
    if not m:
        raise ValueError(f"expected a window such as 7d, 24h or 30m, got {value!r}")
    return float(m.group(1)) * WINDOW_UNITS[m.group(2)]


def parse_point(value: str, start: float) -> float:
    """A point in time: ISO 8601 (with or without zone: local time) or ``-30s`` (before
    ``start``). Returns an epoch."""
    m = RELATIVE.match(value)
    if m:
        return start - parse_duration(m.group(1) + (m.group(2) or "s"))
    text = value.strip().replace("Z", "+00:00")
    dt = datetime.fromisoformat(text)
    return dt.timestamp()


class _C:
    def __init__(self, file: str, positions: Positions):
        self.file = file
        self.positions = positions
        self.problems: list[Problem] = []

    def where(self, path) -> str:
        line, col = position(self.positions, path)
        return f"{self.file}:{line}:{col}"

    def add(self, path, message: str) -> None:
        line, col = position(self.positions, tuple(path))
        self.problems.append(Problem(self.file, line, col, message))

    def keys(self, value: Any, path, known: dict[str, str] | set[str], what: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(path, f"{what} must be a mapping, got {type(value).__name__}")
            return {}
        for k in value:
            if k not in known:
                self.add(tuple(path) + (k,), f"unknown key '{k}' in {what} (known: {', '.join(sorted(known))})")
        return value

    def duration(self, value: Any, path, default: float | None = None) -> float | None:
        if value is None:
            return default
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.add(path, str(exc))
            return default

    def string(self, value: Any, path, what: str, required: bool = False) -> str:
        if value is None:
            if required:
                self.add(path, f"{what} is required")
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            self.add(path, f"{what} must be a non-empty string, got {value!r}")
            return ""
        return value

    def strings(self, value: Any, path, what: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(path, f"{what} must be a string or a list of strings")
            return ()
        return tuple(value)

    def boolean(self, value: Any, path, what: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.add(path, f"{what} must be true or false, got {value!r}")
            return default
        return value


def _target(c: _C, value: Any, path) -> Any:
    if value is None or value == "plan":
        return "plan"
    try:
        return parse_window(value) if isinstance(value, str) and value.strip()[-1:] in "dw" else parse_duration(value)
    except ValueError:
        c.add(path, f"expected 'plan' or a duration such as 30m or 4h, got {value!r}")
        return "plan"


def _backup(c: _C, raw: Any) -> BackupChoice:
    d = c.keys(raw, ("backup",), {"pick", "window", "time", "type", "recovery", "seed"}, "backup")
    pick = d.get("pick", "latest")
    if pick not in PICKS:
        c.add(("backup", "pick"), f"backup.pick must be one of {', '.join(PICKS)}, got {pick!r}")
        pick = "latest"
    window = None
    if d.get("window") is not None:
        try:
            window = parse_window(d["window"])
        except ValueError as exc:
            c.add(("backup", "window"), str(exc))
    when = ""
    if pick == "time":
        when = c.string(d.get("time"), ("backup", "time"), "backup.time (ISO 8601 or -30s)", required=True)
        if when:
            try:
                parse_point(when, 0.0)
            except ValueError:
                c.add(("backup", "time"), f"backup.time: expected ISO 8601 (2026-12-01T10:00:00Z) or a relative "
                                          f"'-30s', got {when!r}")
    elif d.get("time") is not None:
        c.add(("backup", "time"), "backup.time needs pick: time")
    btype = d.get("type", "any")
    if btype not in BACKUP_TYPES:
        c.add(("backup", "type"), f"backup.type must be one of {', '.join(BACKUP_TYPES)}, got {btype!r}")
        btype = "any"
    recovery = d.get("recovery", "")
    if recovery and recovery not in RECOVERIES:
        c.add(("backup", "recovery"), f"backup.recovery must be one of {', '.join(RECOVERIES)}, got {recovery!r}")
        recovery = ""
    if recovery == "time" and pick != "time":
        c.add(("backup", "recovery"), "recovery: time needs pick: time (and backup.time)")
    seed = d.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        c.add(("backup", "seed"), f"backup.seed must be an integer, got {seed!r}")
        seed = None
    return BackupChoice(pick, window, when, btype, recovery, seed)


def _checks(c: _C, raw: Any, driver: str) -> Checks:
    d = c.keys(raw, ("checks",), {"tables", "invariants", "read-write", "smoke", "smoke-command"}, "checks")
    tables = []
    for i, t in enumerate(d.get("tables") or []):
        p = ("checks", "tables", i)
        if isinstance(t, str):
            t = {"table": t}
        if not isinstance(t, dict):
            c.add(p, "a table check is a table name or {table: NAME, as-of: COLUMN}")
            continue
        c.keys(t, p, {"table", "as-of"}, "a table check")
        name = c.string(t.get("table"), p + ("table",), "table", required=True)
        if name and not IDENT.match(name):
            c.add(p + ("table",), f"table {name!r} must be a plain name (schema.table at most)")
        as_of = c.string(t.get("as-of"), p + ("as-of",), "as-of")
        if as_of and not IDENT.match(as_of):
            c.add(p + ("as-of",), f"as-of {as_of!r} must be a column name")
        if name:
            tables.append(TableCheck(name, as_of, c.where(p)))
    if d.get("tables") is not None and not isinstance(d.get("tables"), list):
        c.add(("checks", "tables"), "checks.tables must be a list")
    invariants = []
    for i, q in enumerate(d.get("invariants") or []):
        p = ("checks", "invariants", i)
        if not isinstance(q, dict):
            c.add(p, "an invariant is {name: ..., query: SELECT ..., expect: '== 0'}")
            continue
        c.keys(q, p, {"name", "query", "expect"}, "an invariant")
        name = c.string(q.get("name"), p + ("name",), "invariant name", required=True)
        query = c.string(q.get("query"), p + ("query",), "invariant query", required=True)
        expect = None
        if q.get("expect") is None:
            c.add(p, "an invariant needs expect: (e.g. '== 0', '> 0')")
        else:
            try:
                expect = parse_objective(str(q["expect"]))
            except ValueError as exc:
                c.add(p + ("expect",), str(exc))
        if name and query and expect:
            invariants.append(Invariant(name, query, expect, c.where(p)))
    smoke_command = c.string(d.get("smoke-command"), ("checks", "smoke-command"), "smoke-command")
    smoke_default = driver == "pgbackrest" or bool(smoke_command)
    smoke = c.boolean(d.get("smoke"), ("checks", "smoke"), "checks.smoke", smoke_default)
    if smoke and driver == "command" and not smoke_command:
        c.add(("checks", "smoke"), "the command driver's smoke test is checks.smoke-command (a command to run)")
    return Checks(tuple(tables), tuple(invariants), c.boolean(d.get("read-write"), ("checks", "read-write"),
                                                              "checks.read-write", True), smoke, smoke_command)


def _load(c: _C, raw: Any, path: Path) -> LoadSpec | None:
    if raw is False:
        return None
    if raw is None:
        raw = {}
    d = c.keys(raw, ("load",), {"locustfile", "users", "spawn-rate", "warmup"}, "load")
    users = d.get("users", 10)
    if not isinstance(users, int) or isinstance(users, bool) or users < 1:
        c.add(("load", "users"), f"load.users must be a positive integer, got {users!r}")
        users = 10
    rate = d.get("spawn-rate", users)
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate <= 0:
        c.add(("load", "spawn-rate"), f"load.spawn-rate must be a positive number, got {rate!r}")
        rate = users
    lf = str(d.get("locustfile", "load/api.py"))
    if not _find(lf, path):
        c.add(("load", "locustfile"), f"locustfile {lf!r} not found (relative to {Path.cwd()}, the drill file "
                                      "or the repository)")
    return LoadSpec(locustfile=_find(lf, path) or lf, users=users, spawn_rate=float(rate),
                    warmup=c.duration(d.get("warmup"), ("load", "warmup"), 5.0) or 0.0)


def _find(rel: str, drill_path: Path) -> str:
    p = Path(rel)
    if p.is_absolute():
        return str(p) if p.exists() else ""
    for base in (Path.cwd(), drill_path.parent, *drill_path.resolve().parents):
        if (base / p).exists():
            return str((base / p).resolve())
    return ""


def _source_slo(c: _C, raw: Any) -> Any:
    if raw is None or raw == "plan":
        return "plan"
    if raw is False:
        return {}
    d = c.keys(raw, ("source-slo",), set(CLIENT_SLIS), "source-slo")
    out = {}
    for k, v in d.items():
        if k not in CLIENT_SLIS:
            continue
        try:
            out[k] = parse_objective(v)
        except ValueError as exc:
            c.add(("source-slo", k), str(exc))
    return out


def _command(c: _C, raw: Any) -> CommandSpec:
    d = c.keys(raw, ("command",), {"find", "prepare", "restore", "cleanup", "timeout", "source-url",
                                   "restored-url"}, "command")
    if not d:
        c.add(("command",) if raw is not None else ("driver",),
              "driver: command needs command: {restore: [...], source-url: ..., restored-url: ...}")
    restore = c.strings(d.get("restore"), ("command", "restore"), "command.restore")
    if d and not restore:
        c.add(("command", "restore"), "command.restore (the restore commands) is required")
    src = c.string(d.get("source-url"), ("command", "source-url"), "command.source-url", required=bool(d))
    dst = c.string(d.get("restored-url"), ("command", "restored-url"), "command.restored-url", required=bool(d))
    for key, url in (("source-url", src), ("restored-url", dst)):
        if url and not re.match(r"^(\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}|(postgres(ql)?|mysql|mariadb)://)", url):
            c.add(("command", key), f"command.{key} must be a postgresql://, mysql:// or mariadb:// URL "
                                    f"(or ${{VARIABLE}}), got {url!r}")
    return CommandSpec(
        find=c.string(d.get("find"), ("command", "find"), "command.find"),
        prepare=c.strings(d.get("prepare"), ("command", "prepare"), "command.prepare"),
        restore=restore,
        cleanup=c.strings(d.get("cleanup"), ("command", "cleanup"), "command.cleanup"),
        timeout=c.duration(d.get("timeout"), ("command", "timeout"), 600.0) or 600.0,
        source_url=src, restored_url=dst)


def load_drill(path: str | Path) -> Drill:
    path = Path(path)
    data, positions = load_document(path)
    c = _C(str(path), positions)
    if not isinstance(data, dict):
        raise InvalidInput([Problem(str(path), 1, 1, "a drill is a mapping (title:, backup:, checks:, ...)")])
    for k in data:
        if k not in TOP:
            c.add((k,), f"unknown key '{k}' (known: {', '.join(sorted(TOP))})")
    title = c.string(data.get("title"), ("title",), "title", required=True)
    driver = data.get("driver", "pgbackrest")
    if driver not in DRIVERS:
        c.add(("driver",), f"driver must be one of {', '.join(DRIVERS)}, got {driver!r}")
        driver = "pgbackrest"
    t = c.keys(data.get("targets"), ("targets",), {"rto", "rpo"}, "targets")
    rto = _target(c, t.get("rto"), ("targets", "rto"))
    rpo = _target(c, t.get("rpo"), ("targets", "rpo"))
    backup = _backup(c, data.get("backup"))
    checks = _checks(c, data.get("checks"), driver)
    rf = c.keys(data.get("rpo-from"), ("rpo-from",), {"table", "column"}, "rpo-from")
    rpo_table = c.string(rf.get("table", "orders"), ("rpo-from", "table"), "rpo-from.table")
    rpo_column = c.string(rf.get("column", "created_at"), ("rpo-from", "column"), "rpo-from.column")
    for key, v in (("table", rpo_table), ("column", rpo_column)):
        if v and not IDENT.match(v):
            c.add(("rpo-from", key), f"rpo-from.{key} {v!r} must be a plain name")
    pg = c.keys(data.get("pgbackrest"), ("pgbackrest",), {"config", "stanza", "flush-wal"}, "pgbackrest")
    command = None
    if driver == "command":
        command = _command(c, data.get("command"))
        if backup.pick != "latest" or data.get("pgbackrest") is not None:
            c.add(("backup",) if backup.pick != "latest" else ("pgbackrest",),
                  "driver: command finds its backup with command.find; backup.pick and pgbackrest: are "
                  "for the pgbackrest driver")
    elif data.get("command") is not None:
        c.add(("command",), "command: is for driver: command")
    load = _load(c, data.get("load", None if driver == "pgbackrest" else False), path)
    test_bed = data.get("test-bed") or {}
    if not isinstance(test_bed, dict) or any(k not in ("mariadb",) for k in test_bed):
        c.add(("test-bed",), "test-bed knows: mariadb: {seed: FILE} (throwaway MariaDBs for pytest)")
        test_bed = {}
    tags = c.strings(data.get("tags"), ("tags",), "tags")
    plan = c.string(data.get("plan"), ("plan",), "plan")
    if plan and not _find(plan, path):
        c.add(("plan",), f"plan file {plan!r} not found")
    drill = Drill(
        path=path, title=title, description=str(data.get("description") or ""), driver=driver,
        backup=backup, checks=checks, rto=rto, rpo=rpo, plan_path=_find(plan, path) if plan else "",
        load=load, source_slo=_source_slo(c, data.get("source-slo")),
        rpo_table=rpo_table or "orders", rpo_column=rpo_column or "created_at",
        sabotage=c.strings(data.get("sabotage"), ("sabotage",), "sabotage"),
        timeout=c.duration(data.get("timeout"), ("timeout",), 1800.0) or 1800.0,
        pgbackrest_config=c.string(pg.get("config"), ("pgbackrest", "config"), "pgbackrest.config"),
        pgbackrest_stanza=c.string(pg.get("stanza"), ("pgbackrest", "stanza"), "pgbackrest.stanza"),
        flush_wal=c.boolean(pg.get("flush-wal"), ("pgbackrest", "flush-wal"), "pgbackrest.flush-wal", False),
        command=command, test_bed=test_bed, tags=tags, raw=data,
    )
    if c.problems:
        raise InvalidInput(c.problems)
    return drill


def load_drills(paths: list[str | Path]) -> tuple[list[Drill], list[Problem]]:
    """Every drill below ``paths`` (files or folders); problems of all of them."""
    drills, problems = [], []
    for p in paths:
        p = Path(p)
        files = sorted(x for x in p.rglob("*") if x.suffix in (".yaml", ".yml")) if p.is_dir() else [p]
        for f in files:
            try:
                drills.append(load_drill(f))
            except InvalidInput as exc:
                problems.extend(exc.problems or [Problem(str(f), 0, 0, str(exc))])
    return drills, problems

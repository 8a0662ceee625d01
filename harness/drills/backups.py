"""What backups exist, which one a drill restores, and whether they are fresh enough.

* :func:`list_backups` reads ``pgbackrest info`` (the lab's repository by default, or any
  ``config``/``stanza``) into :class:`BackupInfo` rows, oldest first.
* :func:`choose` picks the drill's backup: the latest, one chosen uniformly at random
  among those in a window (seed 004's weekly restore of a random backup), or the newest
  one that ended before a point in time (point-in-time restore replays WAL up to it).
* :func:`backup_freshness` is the reusable precondition/expectation "a full backup no
  older than the plan's schedule allows" (chaos policy, ``harness backups``).
"""
from __future__ import annotations

import json
import random
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import EnvironmentNotReady

PG_USER = "postgres"
DAY = 86400.0


@dataclass(frozen=True)
class BackupInfo:
    label: str
    type: str  # full | diff | incr
    start: float  # epoch
    stop: float
    size: int | None = None
    repo_size: int | None = None
    wal_start: str | None = None
    wal_stop: str | None = None
    prior: str | None = None

    def age(self, now: float | None = None) -> float:
        return (now or time.time()) - self.stop

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class Repository:
    """A pgBackRest repository + stanza (the lab's, or one a drill names)."""

    config: str
    stanza: str

    @classmethod
    def of_lab(cls, cfg) -> "Repository":
        from harness.lab.backup import STANZA, conf_path

        return cls(str(conf_path(cfg)), STANZA)

    def run(self, *args: str, timeout: float = 300, pg_path: str | None = None) -> subprocess.CompletedProcess:
        cmd = ["setpriv", f"--reuid={PG_USER}", f"--regid={PG_USER}", "--init-groups",
               "pgbackrest", f"--config={self.config}", f"--stanza={self.stanza}"]
        if pg_path:
            cmd.append(f"--pg1-path={pg_path}")
        cmd += list(args)
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/")
        except FileNotFoundError:
            raise EnvironmentNotReady("pgbackrest (or setpriv) is not installed: run ./dev.sh setup") from None

    def info(self) -> dict[str, Any]:
        if not Path(self.config).exists():
            raise EnvironmentNotReady(f"pgBackRest configuration {self.config} does not exist")
        r = self.run("info", "--output=json", timeout=60)
        if r.returncode != 0:
            raise EnvironmentNotReady(f"pgbackrest info failed: {(r.stderr or r.stdout).strip()}")
        data = json.loads(r.stdout or "[]")
        stanza = next((s for s in data if s.get("name") == self.stanza), None) or {}
        archive = stanza.get("archive") or []
        return {
            "status": (stanza.get("status") or {}).get("message", "missing stanza"),
            "status_code": (stanza.get("status") or {}).get("code"),
            "backups": [_row(b) for b in stanza.get("backup", [])],
            "archive": {"min": archive[0].get("min"), "max": archive[0].get("max")} if archive else None,
        }


def _row(b: dict[str, Any]) -> BackupInfo:
    return BackupInfo(
        label=b["label"], type=b["type"], start=float(b["timestamp"]["start"]), stop=float(b["timestamp"]["stop"]),
        size=b.get("info", {}).get("size"), repo_size=b.get("info", {}).get("repository", {}).get("delta"),
        wal_start=b.get("archive", {}).get("start"), wal_stop=b.get("archive", {}).get("stop"), prior=b.get("prior"))


def list_backups(repo: Repository) -> list[BackupInfo]:
    return sorted(repo.info()["backups"], key=lambda b: b.stop)


@dataclass(frozen=True)
class Choice:
    backup: BackupInfo | None
    candidates: int  # how many backups the pick chose among
    reason: str  # why this one (or why none)
    target_time: float | None = None  # point-in-time restores


def choose(backups: list[BackupInfo], pick: str = "latest", *, window: float | None = None,
           type_: str = "any", at: float | None = None, now: float | None = None,
           rng: random.Random | None = None) -> Choice:
    """The backup a drill restores. ``window`` keeps backups that finished within it;
    ``pick='random'`` chooses uniformly among them; ``pick='time'`` the newest backup that
    finished before ``at`` (WAL replay then goes up to ``at``)."""
    now = now or time.time()
    pool = [b for b in backups if type_ == "any" or b.type == type_]
    what = f"{type_} backups" if type_ != "any" else "backups"
    if not backups:
        return Choice(None, 0, "no backup at all in the repository")
    if not pool:
        return Choice(None, 0, f"no {what} in the repository ({len(backups)} of other types)")
    if window is not None:
        pool = [b for b in pool if now - b.stop <= window]
        if not pool:
            newest = max(backups, key=lambda b: b.stop)
            return Choice(None, 0, f"no {what} finished within the last {_dur(window)} "
                                   f"(newest: {newest.label}, {_dur(newest.age(now))} old)")
    if pick == "time":
        assert at is not None
        before = [b for b in pool if b.stop <= at]
        if not before:
            oldest = min(pool, key=lambda b: b.stop)
            return Choice(None, 0, f"no backup finished before the point in time "
                                   f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(at))} "
                                   f"(oldest ends {time.strftime('%H:%M:%S', time.localtime(oldest.stop))})", at)
        b = max(before, key=lambda b: b.stop)
        return Choice(b, len(before), "newest backup that finished before the point in time", at)
    if pick == "random":
        b = (rng or random.SystemRandom()).choice(pool)
        return Choice(b, len(pool), f"chosen uniformly at random among {len(pool)} {what}"
                                    + (f" of the last {_dur(window)}" if window else ""))
    b = max(pool, key=lambda b: b.stop)
    return Choice(b, len(pool), f"latest of {len(pool)} {what}")


@dataclass(frozen=True)
class Freshness:
    """The newest full backup's age against what the plan's schedule allows."""

    ok: bool
    newest_full: BackupInfo | None
    age: float | None  # seconds
    allowed: float | None  # seconds (None: the plan has no full-backup schedule)
    schedule: str  # e.g. "daily full at 00:00 (seed 002 §7 DB daily full 00:00; example)"
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "newest_full": self.newest_full.to_dict() if self.newest_full else None,
                "age": self.age, "allowed": self.allowed, "schedule": self.schedule, "reason": self.reason}


def full_interval(policy) -> tuple[float | None, str]:
    """Seconds between two full backups by the plan's schedule, and its description."""
    if policy is None:
        return None, "the plan has no backup policy"
    at = getattr(policy, "full_at", None)
    src = getattr(policy, "full_source", None)
    if at:
        return DAY, f"daily full at {at}" + (f" ({src})" if src else "")
    every = getattr(policy, "full_every", None)
    if every is not None:
        return float(every), f"full every {_dur(float(every))}"
    return None, "the plan gives no full-backup schedule"


def backup_freshness(backups: list[BackupInfo] | None = None, policy=None, *, now: float | None = None,
                     grace: float = 0.0, repo: Repository | None = None, cfg=None) -> Freshness:
    """Is the newest full backup no older than the plan's schedule allows?

    ``policy`` is the plan's ``backup`` section (``load_plan(...).backup``); ``backups``
    come from :func:`list_backups` (or are read from ``repo``, or the lab ``cfg``'s
    repository, and its plan when ``policy`` is None). Allowed age: one full-backup period
    of the schedule (a day for "daily full at 00:00") plus ``grace`` (e.g. how long a
    full backup takes). A missing full backup is never fresh."""
    now = now or time.time()
    if backups is None:
        if repo is None and cfg is not None:
            repo = Repository.of_lab(cfg)
        if repo is None:
            raise ValueError("backup_freshness needs backups, repo or cfg")
        backups = list_backups(repo)
    plan_error = None
    if policy is None and cfg is not None:
        try:
            from harness.lab.alerting import load_lab_plan

            policy = load_lab_plan(cfg).backup
        except Exception as exc:  # noqa: BLE001 - no plan: freshness cannot be judged (not fresh), and says why
            policy, plan_error = None, f"{type(exc).__name__}: {exc}"
    interval, schedule = full_interval(policy)
    if plan_error:
        schedule = f"the plan could not be read ({plan_error})"
    fulls = [b for b in backups if b.type == "full"]
    if not fulls:
        return Freshness(False, None, None, None if interval is None else interval + grace, schedule,
                         "no full backup at all")
    newest = max(fulls, key=lambda b: b.stop)
    age = max(0.0, now - newest.stop)
    if interval is None:
        return Freshness(False, newest, age, None, schedule,
                         f"newest full backup {newest.label} is {_dur(age)} old; {schedule}, so freshness "
                         "cannot be judged")
    allowed = interval + grace
    ok = age <= allowed
    return Freshness(ok, newest, age, allowed, schedule,
                     f"newest full backup {newest.label} is {_dur(age)} old; {schedule} allows "
                     f"{_dur(allowed)}" + ("" if ok else ": TOO OLD"))


def _dur(s: float | None) -> str:
    if s is None:
        return "—"
    s = float(s)
    if s < 1:
        return f"{s * 1000:.0f}ms"
    if s < 120:
        return f"{s:.1f}s"
    if s < 7200:
        return f"{s / 60:.1f}m"
    if s < 3 * DAY:
        return f"{s / 3600:.1f}h"
    return f"{s / DAY:.1f}d"

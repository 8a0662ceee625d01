"""Drill files, backup choice, freshness and drill reports, without a lab."""
from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from harness.drills.backups import BackupInfo, backup_freshness, choose
from harness.drills.loader import load_drill, parse_point
from harness.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, text, name="drill.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_shipped_drills_validate():
    for f in sorted((ROOT / "drills").glob("*.yaml")):
        d = load_drill(f)
        assert d.title and d.driver in ("pgbackrest", "command")


def test_every_problem_with_file_line_col(tmp_path):
    p = write(tmp_path, """\
title: t
driver: pgbackrest
targets: {rto: soon, rpo: plan}
backup: {pick: sometimes, window: forever}
checks:
  tables:
    - {table: "orders; DROP TABLE x", as-of: created_at}
  invariants:
    - {name: n, query: "SELECT 1"}
colour: blue
""")
    with pytest.raises(InvalidInput) as exc:
        load_drill(p)
    text = str(exc.value)
    lines = text.splitlines()
    assert any(":3:" in ln and "targets.rto" not in ln and "'plan' or a duration" in ln for ln in lines), text
    assert any(":4:" in ln and "backup.pick" in ln for ln in lines), text
    assert any(":4:" in ln and "window" in ln for ln in lines), text
    assert any(":7:" in ln and "plain name" in ln for ln in lines), text
    assert any(":9:" in ln and "expect" in ln for ln in lines), text
    assert any(":10:1:" in ln and "unknown key 'colour'" in ln for ln in lines), text
    assert all(ln.startswith(str(p)) for ln in lines)


def test_validate_cli_exits_2_without_traceback(tmp_path):
    p = write(tmp_path, "title: t\nbackup: {pick: time}\n")
    r = subprocess.run([sys.executable, "-m", "harness.cli", "drill", "validate", str(p)], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 2
    assert f"{p}:2:" in r.stderr and "backup.time" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_run_cli_exits_2_on_bad_input_before_anything_runs(tmp_path):
    p = write(tmp_path, "title: t\ndriver: tape\n")
    r = subprocess.run([sys.executable, "-m", "harness.cli", "drill", "run", str(p)], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 2 and "driver must be one of" in r.stderr


def test_command_driver_needs_its_commands(tmp_path):
    p = write(tmp_path, "title: t\ndriver: command\ncommand: {find: ls}\n")
    with pytest.raises(InvalidInput) as exc:
        load_drill(p)
    assert "command.restore" in str(exc.value) and "source-url" in str(exc.value)


def test_points_in_time():
    assert parse_point("-30s", 1000.0) == 970.0
    assert parse_point("2026-12-01T10:00:00Z", 0) == 1796119200.0


def _backups(n: int, step: float = 3600.0, now: float = 100_000.0) -> list[BackupInfo]:
    return [BackupInfo(f"b{i}", "full" if i % 4 == 0 else "incr", now - (n - i) * step - 60, now - (n - i) * step)
            for i in range(n)]


def test_choose_latest_window_and_type():
    now = 100_000.0
    bs = _backups(8, now=now)
    assert choose(bs, "latest", now=now).backup.label == "b7"
    assert choose(bs, "latest", type_="full", now=now).backup.label == "b4"
    none = choose(bs, "latest", window=60, now=now)
    assert none.backup is None
    assert "no backups finished within the last 60.0s (newest: b7, 60.0m old)" == none.reason


def test_random_backup_is_uniform_within_the_window():
    now = 100_000.0
    bs = _backups(8, now=now)  # stops at 1..8 h ago
    rng = random.Random(7)
    picks = Counter(choose(bs, "random", window=4.5 * 3600, now=now, rng=rng).backup.label for _ in range(4000))
    assert set(picks) == {"b4", "b5", "b6", "b7"}  # only the four of the last 4.5 h
    for label, n in picks.items():
        assert 850 < n < 1150, picks  # uniform: 1000 each, +-15 %


def test_choose_point_in_time_takes_the_newest_backup_before_it():
    now = 100_000.0
    bs = _backups(4, now=now)  # stops at now-4h .. now-1h
    c = choose(bs, "time", at=now - 2.5 * 3600, now=now)
    assert c.backup.label == "b1" and c.target_time == now - 2.5 * 3600
    assert choose(bs, "time", at=now - 10 * 3600, now=now).backup is None


def test_no_backup_at_all():
    c = choose([], "latest")
    assert c.backup is None and c.reason == "no backup at all in the repository"


class _Policy:
    full_at = "00:00"
    full_source = "seed 002 §7"


def test_backup_freshness_against_the_plans_schedule():
    now = 1_000_000.0
    fresh = backup_freshness([BackupInfo("f", "full", now - 3700, now - 3600)], _Policy(), now=now)
    assert fresh.ok and fresh.age == 3600 and fresh.allowed == 86400
    stale = backup_freshness([BackupInfo("f", "full", now - 90000, now - 90000 + 10),
                              BackupInfo("i", "incr", now - 100, now - 50)], _Policy(), now=now)
    assert not stale.ok and "TOO OLD" in stale.reason  # an incremental does not make a full fresh
    assert not backup_freshness([], _Policy(), now=now).ok
    graced = backup_freshness([BackupInfo("f", "full", now - 90000, now - 87000)], _Policy(), now=now, grace=3600)
    assert graced.ok


def test_backup_freshness_with_the_lab_plan_model():
    from harness.plan.loader import load_plan

    policy = load_plan(ROOT / "plans" / "lab.yaml").backup
    now = 1_000_000.0
    assert backup_freshness([BackupInfo("f", "full", now - 200, now - 100)], policy, now=now).ok


def _journal(status="passed", rto=9.5, rpo=12.0, run_id="20261202-010000-drill-x"):
    return {
        "kind": "drill", "run_id": run_id, "status": status,
        "reasons": [] if status == "passed" else ["table orders: 0 rows in the restored copy, 12 on the source"],
        "drill": {"path": "drills/x.yaml", "title": "X restores", "driver": "pgbackrest"},
        "started_at": 1796170000.0, "drill_start": 1796170005.0, "ended_at": 1796170020.0,
        "backup": {"label": "20261202-000000F", "type": "full", "reason": "latest of 1 backups", "candidates": 1},
        "steps": [{"name": n, "label": n, "start": 1796170005.0 + i, "end": 1796170006.0 + i, "offset": i,
                   "seconds": 1.0, "ok": True, "detail": f"{n} done"} for i, n in
                  enumerate(["find-backup", "prepare", "restore", "start", "verify", "teardown"])],
        "rto": {"seconds": rto, "target": 14400, "target_text": "4h", "target_source": "plan", "passed": True},
        "rpo": {"seconds": rpo, "target": 3600, "target_text": "1h", "target_source": "plan", "passed": True,
                "point": 1796170005.0, "newest_acknowledged": 1796170004.0, "newest_restored": 1796169992.0},
        "pitr": {}, "checks": [{"name": "table orders", "kind": "table", "passed": status == "passed",
                                "detail": "12 rows"}],
        "source_slo": {"source": "plan", "objectives": {"availability": ">= 99.9%"}},
        "load": {"users": 10, "series": [{"t": 1796170006.0 + i, "rps": 50, "errors": 0, "p95_ms": 40}
                                         for i in range(10)]},
        "left_behind": [], "events": [{"t": 1796170005.0, "kind": "start", "text": "drill start"}],
    }


def test_drill_report_and_summary_render(tmp_path):
    from harness.report.drill import drill_summary_md, write_drill_reports

    out = tmp_path / "reports" / "run1"
    out.mkdir(parents=True)
    j = _journal("failed", rto=None)
    (out / "journal.json").write_text(json.dumps(j))
    html = write_drill_reports(j, out).read_text()
    assert "FAILED" in html and "table orders: 0 rows in the restored copy" in html and "drill-timeline" in html
    md = drill_summary_md(j)
    assert "| RTO | not reached |" in md and "| RPO | 12.0 s |" in md


def test_index_shows_drill_history_with_targets(tmp_path):
    from harness.report.render import write_index

    for i, (rto, status) in enumerate([(9.5, "passed"), (12.0, "failed")]):
        d = tmp_path / f"2026120{i}-drill"
        d.mkdir()
        j = _journal(status, rto=rto, run_id=f"run-{i}")
        j["started_at"] += i * 86400
        (d / "journal.json").write_text(json.dumps(j))
    html = write_index(tmp_path).read_text()
    assert 'id="drills"' in html and "run-0" in html and "run-1" in html
    assert "9.5 s / 4.0 h ✔" in html and "12.0 s / 4.0 h ✔" in html
    assert "Drill RTO per run" in html and "Drill RPO per run" in html
    # drill journals do not pollute the experiment list
    assert "(unreadable journal)" not in html


def test_harness_report_rebuilds_a_drill_report(tmp_path):
    from harness.report.render import render_report, render_summary

    j = _journal()
    assert "RTO" in render_report(j) and "Drill PASSED" in render_summary(j)


def test_a_drills_tags_are_pytest_markers():
    """`pytest -m pre-release drills/` picks the latest-backup drill (tagged pre-release)
    and leaves the others out, as it does for experiments."""
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                        "--lab=none", "-m", "pre-release", "drills"], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "drills/lab-latest.yaml::lab-latest" in r.stdout, r.stdout
    assert "mysqldump-daily" not in r.stdout and "lab-random-weekly" not in r.stdout, r.stdout

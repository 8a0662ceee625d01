"""Restore drills on the lab (issue 13): a drill passes under load with RTO/RPO measured;
point-in-time restores land on the asked moment; the counterparts fail with the measured
reason; nothing is left behind after a pass, a failure or a Ctrl-C."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.drills.loader import load_drill
from harness.drills.pytest_items import run_drill_with_test_bed
from harness.drills.run import DrillRun
from harness.drills.scratch import port_free, registry_dir

ROOT = Path(__file__).resolve().parents[2]
LATEST = ROOT / "drills" / "lab-latest.yaml"
MYSQLDUMP = ROOT / "drills" / "mysqldump-daily.yaml"

pytestmark = pytest.mark.lab


def drill_file(tmp_path: Path, name: str, **changes) -> Path:
    """drills/lab-latest.yaml with some keys replaced (written as YAML flow values)."""
    import yaml

    data = yaml.safe_load(LATEST.read_text())
    data.update(changes)
    data["plan"] = str(ROOT / "plans" / "lab.yaml")
    data["load"]["locustfile"] = str(ROOT / "load" / "api.py")
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def run(lab, path: Path, tmp_path: Path, **kw):
    return DrillRun(load_drill(path), lab_dir=lab.cfg.run_dir, report_dir=tmp_path / "reports", lock_wait=600,
                    **kw).execute()


def scratch_processes(lab) -> list[str]:
    """Processes that belong to a drill's scratch environment (data dir or smoke service)."""
    marker = str(lab.cfg.path("drills"))
    out = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info.get("cmdline") or [])
        if marker in cmd or "drill-smoke" in cmd or "mariadb-testbed-" in cmd:
            out.append(f"{p.info['pid']}: {cmd[:120]}")
    return out


def assert_nothing_left(lab, journal: dict | None = None) -> None:
    drills_dir = lab.cfg.path("drills")
    left_dirs = [str(p) for p in drills_dir.iterdir()] if drills_dir.exists() else []
    assert not left_dirs, f"scratch directories left behind: {left_dirs}"
    left_reg = [p.name for p in registry_dir().glob("*.json")] if registry_dir().exists() else []
    assert not left_reg, f"scratch registry entries left behind: {left_reg}"
    procs = scratch_processes(lab)
    assert not procs, f"scratch processes left behind: {procs}"
    lo = lab.cfg.port_base + 500
    busy = [p for p in range(lo, lo + 100) if not port_free(p)]
    assert not busy, f"scratch ports still in use: {busy}"
    socks = [p.name for p in Path("/tmp").glob("drill-*-*") if p.is_dir() and p.name.split("-")[1].isdigit()]
    assert not socks, f"scratch socket directories left in /tmp: {socks}"
    if journal is not None:
        assert journal["left_behind"] == []
        assert journal["steps"][-1]["name"] == "teardown" and journal["steps"][-1]["ok"]


def check(journal: dict, kind: str) -> list[dict]:
    return [c for c in journal["checks"] if c["kind"] == kind]


# -- the drill passes ---------------------------------------------------------------------------
def test_latest_backup_drill_passes_under_load_with_rto_and_rpo(lab, tmp_path):
    r = run(lab, LATEST, tmp_path)
    j = r.journal
    assert r.status == "passed", r.reasons
    assert r.exit_code == 0
    # the five DR steps, timed, then the teardown
    assert [s["name"] for s in j["steps"]] == ["find-backup", "prepare", "restore", "start", "verify", "teardown"]
    assert all(s["seconds"] is not None and s["seconds"] >= 0 for s in j["steps"])
    # RTO: drill start -> the last verification, against the plan's 4 h (seed 004)
    verify = j["steps"][4]
    assert j["rto"]["seconds"] == pytest.approx(verify["end"] - j["drill_start"], abs=0.01)
    assert j["rto"]["target"] == 4 * 3600 and "plan" in j["rto"]["target_source"]
    # RPO: measured from the data, against the plan's 1 h
    assert j["rpo"]["seconds"] is not None and 0 <= j["rpo"]["seconds"] < 3600
    assert j["rpo"]["newest_acknowledged"] is not None and j["rpo"]["newest_restored"] is not None
    assert j["rpo"]["target"] == 3600
    # every integrity check ran and passed: tables, invariants, read/write, smoke
    kinds = {c["kind"] for c in j["checks"]}
    assert {"table", "invariant", "read-write", "smoke", "rpo", "rto", "source-slo"} <= kinds
    table = check(j, "table")[0]
    assert table["observed"]["rows"] > 0 and table["observed"] == table["expected"]
    # the source served Locust load within its SLOs the whole time
    slos = check(j, "source-slo")
    assert slos and all(c["passed"] for c in slos)
    assert sum(row["rps"] for row in j["load"]["series"]) > 50
    # printed/reported: the report carries RTO and RPO
    html = Path(r.report_path).read_text()
    assert "RTO" in html and "RPO" in html and j["run_id"] in html
    md = (Path(r.journal_path).parent / "summary.md").read_text()
    assert "| RTO |" in md and "| RPO |" in md
    index = (tmp_path / "reports" / "index.html").read_text()
    assert 'id="drills"' in index and j["run_id"] in index
    assert_nothing_left(lab, j)


def test_cli_prints_rto_and_rpo_and_exits_0(lab, tmp_path):
    env = dict(os.environ, HARNESS_LAB_DIR=lab.cfg.run_dir)
    p = subprocess.run([sys.executable, "-m", "harness.cli", "drill", "run", str(LATEST), "--report-dir",
                        str(tmp_path), "--wait", "300", "--json"], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    out = json.loads(p.stdout)
    assert out["status"] == "passed" and out["rto_seconds"] > 0 and out["rpo_seconds"] is not None
    assert "RTO" in p.stderr and "RPO" in p.stderr and "drill PASSED" in p.stderr
    assert_nothing_left(lab)


def test_point_in_time_restore_lands_on_the_asked_moment(lab, tmp_path):
    # The load writes orders during the 5 s warm-up; the point is 2.5 s before the drill
    # starts: orders before it must be in the copy, orders after it must not.
    path = drill_file(tmp_path, "pitr", backup={"pick": "time", "time": "-2.5s"})
    r = run(lab, path, tmp_path)
    j = r.journal
    assert r.status == "passed", r.reasons
    target = j["drill_start"] - 2.5
    t = j["pitr"]["tables"]["orders"]
    assert t["target"] == pytest.approx(target, abs=0.01)
    assert t["rows_after_source"] > 0, "the source must have written after the point (else the test proves nothing)"
    assert t["rows_after_restored"] == 0
    assert t["rows_before_restored"] > 0 and t["rows_before_restored"] == t["rows_before_source"]
    assert j["rpo"]["newest_restored"] <= target
    assert "--type=time" in j["restore_command"]
    assert_nothing_left(lab, j)


# -- counterparts: each must fail with the measured reason --------------------------------------
def test_restore_point_older_than_rpo_target_fails(lab, tmp_path):
    from harness.lab.backup import backup

    backup(lab.cfg, "full")  # a backup with the orders table, then writes after it
    path = drill_file(tmp_path, "old-point", backup={"pick": "latest", "recovery": "backup-end"},
                      targets={"rto": "plan", "rpo": "2s"})
    r = run(lab, path, tmp_path)
    j = r.journal
    assert r.status == "failed" and r.exit_code == 1
    rpo = j["rpo"]
    assert rpo["seconds"] > 2 and rpo["passed"] is False
    assert any("RPO" in x and "exceeds the target 2.0s" in x for x in r.reasons), r.reasons
    # the copy itself was fine: only the RPO failed it
    assert all(c["passed"] for c in j["checks"] if c["kind"] in ("table", "read-write", "smoke"))
    assert_nothing_left(lab, j)


def test_truncated_table_in_the_restored_copy_is_caught(lab, tmp_path):
    path = drill_file(tmp_path, "truncated", sabotage=["TRUNCATE orders"])
    r = run(lab, path, tmp_path)
    j = r.journal
    assert r.status == "failed"
    t = check(j, "table")[0]
    assert not t["passed"] and t["observed"]["rows"] == 0 and t["expected"]["rows"] > 0
    assert any(x.startswith("table orders: 0 rows in the restored copy") for x in r.reasons), r.reasons
    assert j["rto"]["seconds"] is None  # the service never answered with its checks passed
    assert_nothing_left(lab, j)


def test_no_backup_at_all_fails(lab, tmp_path):
    # A repository that has never received a backup (postgres must read it: under the lab).
    empty = lab.cfg.path("drill-test-empty-repo")
    shutil.rmtree(empty, ignore_errors=True)
    (empty / "repo").mkdir(parents=True)
    conf = empty / "pgbackrest.conf"
    conf.write_text(f"[global]\nrepo1-path={empty / 'repo'}\nlog-path={empty}\nlock-path={empty}\n"
                    "log-level-console=warn\nlog-level-file=off\n")
    for p in (empty, empty / "repo", conf):
        shutil.chown(p, "postgres", "postgres")
    path = drill_file(tmp_path, "no-backup", pgbackrest={"config": str(conf), "stanza": "lab"})
    try:
        r = run(lab, path, tmp_path)
    finally:
        shutil.rmtree(empty, ignore_errors=True)
    j = r.journal
    assert r.status == "failed" and r.exit_code == 1
    assert any("no backup at all" in x for x in r.reasons), r.reasons
    assert [s["name"] for s in j["steps"]] == ["find-backup", "teardown"]
    assert j["rto"]["seconds"] is None and "not reached" in j["rto"]["detail"]
    assert_nothing_left(lab, j)


def test_restore_slower_than_rto_target_fails(lab, tmp_path):
    path = drill_file(tmp_path, "slow", targets={"rto": "1s", "rpo": "plan"})
    r = run(lab, path, tmp_path)
    j = r.journal
    assert r.status == "failed"
    assert j["rto"]["seconds"] > 1 and j["rto"]["passed"] is False
    assert any(x.startswith("RTO ") and "exceeds the target 1.0s" in x for x in r.reasons), r.reasons
    # everything else held: the RTO alone failed it
    assert all(c["passed"] for c in j["checks"] if c["kind"] != "rto")
    assert_nothing_left(lab, j)


# -- Ctrl-C -------------------------------------------------------------------------------------
def test_ctrl_c_during_a_drill_leaves_nothing_behind(lab, tmp_path):
    # The latest-backup drill with one slow invariant, so that the Ctrl-C lands while the
    # drill is verifying (the lab's restore can take under 5 s: the Ctrl-C then found a
    # drill that had already passed)
    slow = tmp_path / "drill" / "slow.yaml"
    slow.parent.mkdir()
    text = LATEST.read_text().replace("plan: plans/lab.yaml", f"plan: {ROOT}/plans/lab.yaml").replace(
        "locustfile: load/api.py", f"locustfile: {ROOT}/load/api.py")
    marker = "  invariants:\n"
    assert marker in text
    text = text.replace(marker, marker + '    - {name: slow, query: "SELECT 0 FROM pg_sleep(40)", expect: "== 0"}\n')
    slow.write_text(text)
    env = dict(os.environ, HARNESS_LAB_DIR=lab.cfg.run_dir)
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "drill", "run", str(slow), "--report-dir",
                             str(tmp_path), "--wait", "300"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, cwd=ROOT)
    try:
        # wait until the scratch PostgreSQL runs (its pid is in the registry), then Ctrl-C
        deadline = time.time() + 180
        started = None
        while time.time() < deadline and started is None and proc.poll() is None:
            for f in registry_dir().glob("*.json") if registry_dir().exists() else []:
                try:
                    data = json.loads(f.read_text())
                except ValueError:
                    continue
                if data.get("owner") == proc.pid and data.get("pids"):
                    started = data
            time.sleep(0.05)
        assert started, "the drill never started its scratch instance"
        assert psutil.pid_exists(started["pids"][0])
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "INTERRUPTED" in out
    for pid in started["pids"]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    journals = list(tmp_path.glob("*/journal.json"))
    assert journals, out
    j = json.loads(journals[0].read_text())
    assert j["status"] == "interrupted"
    assert_nothing_left(lab, j)


# -- the command driver: seed 003's mysqldump drill ---------------------------------------------
def _testbed_processes() -> list[str]:
    return [f"{p.info['pid']}" for p in psutil.process_iter(["pid", "cmdline"])
            if "mariadb-testbed-" in " ".join(p.info.get("cmdline") or [])]


def test_mysqldump_drill_passes(tmp_path):
    d = load_drill(MYSQLDUMP)
    r = run_drill_with_test_bed(d, lambda env: DrillRun(d, report_dir=tmp_path, env=env).execute())
    j = r.journal
    assert r.status == "passed", r.reasons
    rows = {c["name"]: c for c in check(j, "table")}
    assert rows["table customers"]["observed"]["rows"] == 4
    assert rows["table events"]["observed"]["rows"] > 0  # the continuous writes up to the dump
    assert 0 < j["rpo"]["seconds"] < 30  # writes after the dump are the RPO
    assert j["rto"]["seconds"] > 0
    assert not list(Path("/tmp").glob("mariadb-testbed-*"))
    assert not _testbed_processes()


def test_mysqldump_drill_on_a_dump_with_a_missing_table_fails(tmp_path):
    d = load_drill(MYSQLDUMP)
    r = run_drill_with_test_bed(d, lambda env: DrillRun(d, report_dir=tmp_path, env=env).execute(),
                                dump_args=["--ignore-table=shop.customers"])
    assert r.status == "failed"
    assert "table customers: missing in the restored copy" in r.reasons
    # the tables the dump did hold are intact: the missing one alone fails the drill
    assert all(c["passed"] for c in r.journal["checks"] if c["name"] in ("table orders", "table events"))
    assert any(x.startswith("invariant every order has its customer") for x in r.reasons), r.reasons
    assert not list(Path("/tmp").glob("mariadb-testbed-*"))
    assert not _testbed_processes()

"""Lab pid files name one process, whatever the wall clock does.

A CI run (2026-12-03) lost 14 tests to one thing: its clock was adjusted by over a second
mid-run, psutil's wall-clock start time of every lab process moved with /proc/stat's btime,
the pid files' recorded start no longer matched, every lab process read as stale, and
faults that act by pid (a database member's crash, the dependency's stop, Prometheus'
freeze) acted on nothing. These tests run real processes; the clock step is what a pid
file's wall-clock field looks like after it (shifted), since the clock itself is not ours
to move on a shared machine.
"""
from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest

from harness.lab import procs
from harness.lab.config import LabConfig


@pytest.fixture
def cfg(tmp_path):
    return LabConfig(run_dir=str(tmp_path / "lab"))


@pytest.fixture
def sleeper(cfg):
    pid = procs.start(cfg, "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    yield pid
    procs.stop(cfg, "sleeper", timeout=2)


def _pidfile(cfg):
    return cfg.path("pids", "sleeper.pid")


def test_a_started_process_is_read_back_and_stopped(cfg, sleeper):
    assert procs.read_pid(cfg, "sleeper") == sleeper
    fields = _pidfile(cfg).read_text().split()
    assert int(fields[0]) == sleeper and int(fields[2]) == procs.start_ticks(sleeper)
    procs.stop(cfg, "sleeper", timeout=2)
    assert procs.read_pid(cfg, "sleeper") is None
    assert not procs.same_process(sleeper, int(fields[2]))  # gone, or a zombie


def test_a_wall_clock_step_does_not_make_a_live_process_stale(cfg, sleeper):
    pid, created, ticks = _pidfile(cfg).read_text().split()
    for step in (-3600.0, -5.0, 5.0, 86400.0):  # the wall-clock start as it reads after a step
        _pidfile(cfg).write_text(f"{pid} {float(created) + step} {ticks}\n")
        assert procs.read_pid(cfg, "sleeper") == sleeper, step


def test_a_recycled_pid_is_not_taken_for_the_lab_process(cfg, sleeper):
    pid, created, ticks = _pidfile(cfg).read_text().split()
    _pidfile(cfg).write_text(f"{pid} {created} {int(ticks) - 1}\n")  # an earlier process, same pid
    assert procs.read_pid(cfg, "sleeper") is None
    assert not procs.same_process(sleeper, int(ticks) - 1) and procs.same_process(sleeper, int(ticks))


def test_a_pid_file_from_before_start_ticks_still_reads(cfg, sleeper):
    pid, created, _ = _pidfile(cfg).read_text().split()
    _pidfile(cfg).write_text(f"{pid} {created}\n")
    assert procs.read_pid(cfg, "sleeper") == sleeper
    _pidfile(cfg).write_text(f"{pid} {float(created) - 30}\n")  # and stale by its old rule
    assert procs.read_pid(cfg, "sleeper") is None


def test_start_ticks_reads_a_command_name_with_spaces_and_parentheses(tmp_path):
    exe = tmp_path / "a b) (c"
    exe.symlink_to(sys.executable)
    p = subprocess.Popen([str(exe), "-c", "import time; time.sleep(30)"])
    try:
        ticks = procs.start_ticks(p.pid)
        assert ticks is not None and ticks == procs.start_ticks(p.pid)
        assert ticks >= procs.start_ticks(1)
        # the same instant psutil gives, in ticks since boot
        assert abs(ticks / os.sysconf("SC_CLK_TCK") + psutil.boot_time() - psutil.Process(p.pid).create_time()) < 1.0
    finally:
        p.kill()
        p.wait()
    assert procs.start_ticks(p.pid) is None or procs.start_ticks(p.pid) != ticks

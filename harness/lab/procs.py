"""Lab processes: started detached, tracked by pid files, stopped for sure.

Every lab process runs in its own session (so Ctrl-C on the harness does not hit
it), logs to ``<run_dir>/logs/<name>.log`` and has ``<run_dir>/pids/<name>.pid``.
A pid file also records the process start time, so a recycled pid is never killed.

The start time that identifies a process is the kernel's own: clock ticks since boot
(``/proc/<pid>/stat``, field 22), which no change of the wall clock moves. The wall-clock
start time psutil gives (boot time + ticks) is not fit for that: it is recomputed from
``/proc/stat``'s btime, which follows every step or slew of the system clock, so after a
clock adjustment of over a second every lab process looked stale, and the faults that act
on them by pid (a member's crash, the dependency's stop) acted on nothing (a CI run's
14 failures, 2026-12-03).
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil

from harness.errors import EnvironmentNotReady
from harness.lab.config import LabConfig


def _pidfile(cfg: LabConfig, name: str) -> Path:
    return cfg.path("pids", f"{name}.pid")


def logfile(cfg: LabConfig, name: str) -> Path:
    return cfg.path("logs", f"{name}.log")


def start(
    cfg: LabConfig,
    name: str,
    argv: list[str],
    *,
    netns: str | None = None,
    user: str | None = None,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
) -> int:
    """Start ``argv`` detached (in ``netns`` and as ``user`` when given). Idempotent."""
    if running(cfg, name):
        return read_pid(cfg, name) or 0
    cfg.path("pids").mkdir(parents=True, exist_ok=True)
    cfg.path("logs").mkdir(parents=True, exist_ok=True)
    cmd = list(argv)
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *cmd]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    full_env = dict(os.environ)
    full_env.update(env or {})
    with open(logfile(cfg, name), "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=full_env,
            cwd=str(cwd) if cwd else None,
            close_fds=True,
        )
    # `ip netns exec` and setpriv exec() into the program: the pid stays the program's.
    _write_pid(cfg, name, proc.pid)
    return proc.pid


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (None if it is gone).

    With the pid it names one process for the machine's uptime: a recycled pid has a
    later start, and no change of the wall clock moves it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        # the command name (field 2) is in parentheses and may hold spaces or ')'
        return int(stat[stat.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def same_process(pid: int, ticks: int | None) -> bool:
    """``pid`` is still the process that started at ``ticks`` (and not a zombie)."""
    if ticks is None or start_ticks(pid) != ticks:
        return False
    return _alive(pid)


def _write_pid(cfg: LabConfig, name: str, pid: int) -> None:
    try:
        created = psutil.Process(pid).create_time()  # for people reading the file
    except psutil.Error:
        created = 0.0
    _pidfile(cfg, name).write_text(f"{pid} {created} {start_ticks(pid) or 0}\n")


def read_pid(cfg: LabConfig, name: str) -> int | None:
    """The pid of a running lab process, or None (stale pid files are ignored)."""
    try:
        fields = _pidfile(cfg, name).read_text().split()
        pid, created = int(fields[0]), float(fields[1])
        ticks = int(fields[2]) if len(fields) > 2 else None
    except (FileNotFoundError, ValueError, IndexError):
        return None
    if ticks:
        return pid if same_process(pid, ticks) else None
    # a pid file from before start ticks were recorded: the wall-clock start, loosely
    try:
        proc = psutil.Process(pid)
        if created and abs(proc.create_time() - created) > 1.0:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return pid


def running(cfg: LabConfig, name: str) -> bool:
    return read_pid(cfg, name) is not None


def names(cfg: LabConfig) -> list[str]:
    d = cfg.path("pids")
    return sorted(p.stem for p in d.glob("*.pid")) if d.exists() else []


def stop(cfg: LabConfig, name: str, timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Stop a lab process and its whole session; SIGKILL after ``timeout``."""
    pid = read_pid(cfg, name)
    if pid is not None:
        try:
            group = [pid] + [c.pid for c in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            group = [pid]
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            for p in group:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
        deadline = time.time() + timeout
        while time.time() < deadline and any(psutil.pid_exists(p) and _alive(p) for p in group):
            time.sleep(0.05)
        for p in group:
            if psutil.pid_exists(p) and _alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    _pidfile(cfg, name).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_for(check, timeout: float, what: str, cfg: LabConfig, name: str, step: float = 0.1):
    """Poll ``check()`` until truthy; raise naming the component and its log file."""
    deadline = time.time() + timeout
    last_exc: Exception | None = None
    while time.time() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            last_exc = exc
        if name and not running(cfg, name) and _pidfile(cfg, name).exists():
            break
        time.sleep(step)
    tail = ""
    log = logfile(cfg, name)
    if log.exists():
        lines = log.read_text(errors="replace").splitlines()[-8:]
        tail = "\n    " + "\n    ".join(lines)
    raise EnvironmentNotReady(
        f"{what} did not become healthy within {timeout:.0f}s"
        + (f" (last error: {last_exc})" if last_exc else "")
        + f"; log: {log}{tail}"
    )

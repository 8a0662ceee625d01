"""Scratch instances a drill creates, and the guarantee that none outlives it.

Every scratch resource (a directory, a process, a port) is written to a registry file
``<state root>/drills/scratch/<run-id>.json`` *before* it is created, with the pid of the
drill that owns it. Teardown stops processes (SIGINT/SIGTERM, then SIGKILL of the whole
tree), removes directories and deletes the registry file; it runs on success, failure,
exceptions, Ctrl-C and SIGTERM. After a SIGKILL of the drill itself, the next drill (or
``harness drill cleanup``) finds the registry file of a dead owner and removes what it
lists.

:class:`ScratchPostgres` restores a pgBackRest backup into a fresh data directory and
runs it on loopback on its own port, with archiving off (lab-facts: a drill must never
push WAL into the live repository) and every setting that points at the live cluster
(listen address, socket directory, hba/ident files, synchronous standbys) overridden.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from harness.errors import EnvironmentNotReady
from harness.lab.config import state_root
from harness.lab.db import make_traversable

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"


def registry_dir() -> Path:
    return state_root() / "drills" / "scratch"


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _claimed_ports() -> set[int]:
    out: set[int] = set()
    for f in registry_dir().glob("*.json"):
        try:
            out.update(int(p) for p in json.loads(f.read_text()).get("ports", []))
        except (OSError, ValueError):
            continue
    return out


@dataclass
class Scratch:
    """The scratch resources of one drill run (see the module docstring)."""

    run_id: str
    path: Path = field(init=False)
    data: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        registry_dir().mkdir(parents=True, exist_ok=True)
        self.path = registry_dir() / f"{self.run_id}.json"
        self.data = {"owner": os.getpid(), "run_id": self.run_id, "dirs": [], "pids": [], "ports": [],
                     "commands": []}
        self._save()

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)

    def add_dir(self, d: Path) -> Path:
        self.data["dirs"].append(str(d))
        self._save()
        return d

    def add_pid(self, pid: int) -> None:
        self.data["pids"].append(pid)
        self._save()

    def add_cleanup_command(self, cmd: str, env: dict[str, str] | None = None) -> None:
        self.data["commands"].append({"cmd": cmd, "env": env or {}})
        self._save()

    def port(self, lo: int, hi: int) -> int:
        """A free loopback port in [lo, hi], claimed in the registry."""
        claimed = _claimed_ports()
        for p in range(lo, hi + 1):
            if p not in claimed and port_free(p):
                self.data["ports"].append(p)
                self._save()
                return p
        raise EnvironmentNotReady(f"no free port for a scratch instance in {lo}-{hi}")

    def teardown(self) -> list[str]:
        """Remove everything; returns what could not be removed (empty: all gone)."""
        left = teardown_record(self.data)
        if not left:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        return left


def _tree(pid: int) -> list[psutil.Process]:
    try:
        p = psutil.Process(pid)
        return [p] + p.children(recursive=True)
    except psutil.Error:
        return []


def kill_tree(pid: int, first: int = signal.SIGTERM, wait: float = 10.0) -> None:
    procs = _tree(pid)
    for p in procs[:1]:
        try:
            p.send_signal(first)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=wait)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)


def teardown_record(data: dict[str, Any]) -> list[str]:
    left: list[str] = []
    for pid in reversed(data.get("pids", [])):
        kill_tree(int(pid), signal.SIGINT)  # PostgreSQL: fast shutdown; others: KeyboardInterrupt
    for c in data.get("commands", []):
        try:
            subprocess.run(["bash", "-c", c["cmd"]], env={**os.environ, **c.get("env", {})},
                           capture_output=True, timeout=60)
        except (subprocess.TimeoutExpired, OSError) as exc:
            left.append(f"cleanup command {c['cmd']!r}: {exc}")
    for pid in data.get("pids", []):
        if psutil.pid_exists(int(pid)):
            try:
                if psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE:
                    left.append(f"process {pid}")
            except psutil.Error:
                pass
    for d in data.get("dirs", []):
        shutil.rmtree(d, ignore_errors=True)
        if Path(d).exists():
            left.append(f"directory {d}")
    for port in data.get("ports", []):
        # A port still in use (LISTEN) after its processes are gone names a survivor.
        deadline = time.time() + 5
        while not port_free(int(port)) and time.time() < deadline:
            time.sleep(0.1)
        if not port_free(int(port)):
            left.append(f"port {port}")
    return left


def cleanup_leftovers(include_live: bool = False) -> list[str]:
    """Tear down scratch resources of drills whose owner is gone. Returns what was removed."""
    done: list[str] = []
    if not registry_dir().exists():
        return done
    for f in sorted(registry_dir().glob("*.json")):
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError):
            f.unlink(missing_ok=True)
            continue
        owner = int(data.get("owner", 0))
        if owner and psutil.pid_exists(owner) and not include_live:
            continue
        left = teardown_record(data)
        if not left:
            f.unlink(missing_ok=True)
        what = ", ".join(data.get("dirs", [])) or data.get("run_id", f.stem)
        done.append(f"{data.get('run_id', f.stem)}: removed {what}" + (f"; LEFT {', '.join(left)}" if left else ""))
    return done


def _as_postgres() -> list[str]:
    return ["setpriv", f"--reuid={PG_USER}", f"--regid={PG_USER}", "--init-groups"]


class ScratchPostgres:
    """A restored PostgreSQL on 127.0.0.1:<port>, data in ``root``/data."""

    def __init__(self, scratch: Scratch, root: Path, port: int):
        self.scratch = scratch
        self.root = root
        self.data_dir = root / "data"
        self.sock = root / "sock"  # replaced by a short /tmp directory in prepare()
        self.log = root / "postgres.log"
        self.port = port
        self.proc: subprocess.Popen | None = None

    def prepare(self) -> None:
        self.scratch.add_dir(self.root)
        self.root.mkdir(parents=True, exist_ok=False)
        # Unix socket paths are limited to 107 bytes: a short directory of its own.
        import tempfile

        self.sock = Path(tempfile.mkdtemp(prefix=f"drill-{self.port}-", dir="/tmp"))
        self.scratch.add_dir(self.sock)
        for p in (self.root, self.sock):
            shutil.chown(p, PG_USER, PG_USER)
        os.chmod(self.root, 0o700)
        make_traversable(self.root.parent)

    def restore(self, repo, label: str, recovery: str, target_time: float | None, timeout: float) -> str:
        """``pgbackrest restore`` of ``label``; returns the command line (for the journal)."""
        args = ["--archive-mode=off", f"--set={label}", "--log-level-console=warn"]
        if recovery == "backup-end":
            args += ["--type=immediate", "--target-action=promote"]
        elif recovery == "time":
            from datetime import datetime, timezone

            ts = datetime.fromtimestamp(target_time, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00")
            args += ["--type=time", f"--target={ts}", "--target-action=promote"]
        # end-of-wal: pgBackRest's default type replays every archived segment, then promotes
        try:
            r = repo.run(*args, "restore", timeout=timeout, pg_path=str(self.data_dir))
        except subprocess.TimeoutExpired:
            raise DrillStepFailed(f"pgbackrest restore did not finish within {timeout:.0f}s") from None
        if r.returncode != 0:
            raise DrillStepFailed(f"pgbackrest restore failed (exit {r.returncode}): "
                                  f"{(r.stderr or r.stdout).strip()[-600:]}")
        return " ".join(["pgbackrest", f"--config={repo.config}", f"--stanza={repo.stanza}",
                         f"--pg1-path={self.data_dir}", *args, "restore"])

    def start(self, timeout: float) -> None:
        overrides = {
            "port": str(self.port), "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.sock),
            "hba_file": str(self.data_dir / "pg_hba.conf"), "ident_file": str(self.data_dir / "pg_ident.conf"),
            "archive_mode": "off", "archive_command": "", "synchronous_standby_names": "",
            "cluster_name": f"drill-{self.port}", "logging_collector": "off", "primary_conninfo": "",
        }
        argv = [*_as_postgres(), str(PG_BIN / "postgres"), "-D", str(self.data_dir)]
        for k, v in overrides.items():
            argv += ["-c", f"{k}={v}"]
        log = open(self.log, "ab")
        try:
            # Its own session: a Ctrl-C on the terminal reaches the drill, whose teardown
            # stops this instance; nothing else signals it behind our back.
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd="/",
                                         start_new_session=True)
        finally:
            log.close()
        self.scratch.add_pid(self.proc.pid)
        deadline = time.time() + timeout
        last = "not started"
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise DrillStepFailed(f"the restored PostgreSQL exited (code {self.proc.returncode}) during "
                                      f"start-up: {self.log_tail()}")
            try:
                import psycopg

                with psycopg.connect(self.dsn("postgres"), autocommit=True, connect_timeout=2) as conn:
                    if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        return
                    last = "still in recovery"
            except Exception as exc:  # noqa: BLE001 - starting up
                last = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            time.sleep(0.05)
        raise DrillStepFailed(f"the restored PostgreSQL did not accept writes within {timeout:.0f}s ({last}); "
                              f"{self.log_tail()}")

    def log_tail(self, n: int = 5) -> str:
        try:
            lines = [ln for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()]
            bad = [ln for ln in lines if any(w in ln for w in ("FATAL:", "PANIC:", "ERROR:"))]
            return "log: " + " | ".join((bad[-2:] or []) + lines[-2:] if bad else lines[-n:])
        except OSError:
            return f"log {self.log} unreadable"

    def dsn(self, dbname: str = "harness") -> str:
        from harness.lab.db import APP_PASSWORD, APP_USER

        if dbname == "postgres":  # the local socket: "local all all trust" in the lab's pg_hba
            return f"host={self.sock} port={self.port} dbname=postgres user=postgres connect_timeout=2"
        return (f"host=127.0.0.1 port={self.port} dbname={dbname} user={APP_USER} password={APP_PASSWORD} "
                f"connect_timeout=2")

    def url(self, dbname: str = "harness") -> str:
        from harness.lab.db import APP_PASSWORD, APP_USER

        return f"postgresql://{APP_USER}:{APP_PASSWORD}@127.0.0.1:{self.port}/{dbname}"


class DrillStepFailed(Exception):
    """A drill step failed: the drill's verdict is 'failed' with this reason."""

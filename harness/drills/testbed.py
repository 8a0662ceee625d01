"""Throwaway MariaDB instances for the command driver's drills (seed 003's mysqldump).

``MariaDbTestBed`` starts, on loopback, a *source* MariaDB loaded from a seed SQL file
with a writer that inserts a timestamped row every 0.1 s (so RPO has something to
measure), takes the "daily" dump with seed 003's command (``mysqldump --all-databases
--single-transaction``) into a dump directory, and starts an empty *scratch* MariaDB to
restore into. It exports what the drill file's commands use:

  MARIADB_SOURCE_URL, MARIADB_SCRATCH_URL   mysql://drill:drill@127.0.0.1:PORT/
  MARIADB_SCRATCH_PORT, MARIADB_SOURCE_PORT
  DRILL_DUMP_DIR                             where the dump files are

and removes every process and directory on ``stop()`` (also registered with the drill
scratch registry, so a killed test leaves nothing that ``harness drill cleanup`` would
not remove). Debian's mariadb-server provides ``mariadb-install-db`` and ``mariadbd``.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from harness.drills.scratch import Scratch, kill_tree, port_free
from harness.errors import EnvironmentNotReady

USER = "drill"
PASSWORD = "drill"


class MariaDbServer:
    def __init__(self, scratch: Scratch, root: Path, port: int, name: str):
        self.scratch = scratch
        self.root = root
        self.port = port
        self.name = name
        self.proc: subprocess.Popen | None = None

    @property
    def socket(self) -> str:
        return str(self.root / "sock")

    @property
    def url(self) -> str:
        return f"mysql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/"

    def start(self) -> None:
        for tool in ("mariadb-install-db", "mariadbd", "mariadb", "mysqldump"):
            if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
                raise EnvironmentNotReady(f"{tool} is missing: apt-get install mariadb-server mariadb-client "
                                          "(./dev.sh setup installs them)")
        if not port_free(self.port):
            raise EnvironmentNotReady(f"port {self.port} is in use: cannot start the {self.name} MariaDB")
        data = self.root / "data"
        data.mkdir(parents=True)
        shutil.chown(self.root, "mysql", "mysql")
        shutil.chown(data, "mysql", "mysql")
        r = subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=mysql",
                            "--skip-test-db", "--auth-root-authentication-method=socket"],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise EnvironmentNotReady(f"mariadb-install-db failed: {(r.stderr or r.stdout).strip()[-400:]}")
        log = open(self.root / "mariadb.log", "ab")
        try:
            self.proc = subprocess.Popen(
                ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={data}", f"--socket={self.socket}",
                 f"--port={self.port}", "--bind-address=127.0.0.1", "--user=mysql",
                 f"--pid-file={self.root / 'mariadb.pid'}", "--innodb-buffer-pool-size=32M",
                 "--performance-schema=OFF", "--skip-log-bin", "--log-error=" + str(self.root / "error.log")],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        self.scratch.add_pid(self.proc.pid)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise EnvironmentNotReady(f"the {self.name} MariaDB exited; see {self.root / 'error.log'}")
            if self.sql_socket("SELECT 1", check=False).returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise EnvironmentNotReady(f"the {self.name} MariaDB did not start within 60s")
        self.sql_socket(f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; "
                        f"GRANT ALL ON *.* TO '{USER}'@'127.0.0.1' WITH GRANT OPTION;")

    def sql_socket(self, sql: str, check: bool = True, db: str = "") -> subprocess.CompletedProcess:
        r = subprocess.run(["mariadb", f"--socket={self.socket}", "--user=root", "--batch", *([db] if db else [])],
                           input=sql, capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise EnvironmentNotReady(f"{self.name} MariaDB: {r.stderr.strip()[-300:]}")
        return r

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            kill_tree(self.proc.pid, signal.SIGTERM, wait=20)


class MariaDbTestBed:
    def __init__(self, seed_sql: str | Path, *, source_port: int = 23600, scratch_port: int = 23601,
                 dump_args: list[str] | None = None, writer_table: str = "shop.events", run_id: str = ""):
        self.seed_sql = Path(seed_sql)
        self.source_port = source_port
        self.scratch_port = scratch_port
        self.dump_args = list(dump_args or [])
        self.writer_table = writer_table
        self.run_id = run_id or f"testbed-{os.getpid()}-{int(time.time() * 1000)}"
        self.scratch: Scratch | None = None
        self.root: Path | None = None
        self.source: MariaDbServer | None = None
        self.target: MariaDbServer | None = None
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self.writes = 0
        self.env: dict[str, str] = {}

    def start(self) -> dict[str, str]:
        self.scratch = Scratch(self.run_id)
        self.root = Path(tempfile.mkdtemp(prefix="mariadb-testbed-"))
        self.scratch.add_dir(self.root)
        os.chmod(self.root, 0o755)
        self.source = MariaDbServer(self.scratch, self.root / "source", self.source_port, "source")
        self.target = MariaDbServer(self.scratch, self.root / "scratch", self.scratch_port, "scratch")
        self.source.start()
        self.target.start()
        self.source.sql_socket(self.seed_sql.read_text())
        self._writer = threading.Thread(target=self._write, name="testbed-writer", daemon=True)
        self._writer.start()
        time.sleep(3.0)  # some rows before the dump (older than the as-of margin)
        dumps = self.root / "dumps"
        dumps.mkdir()
        self.dump(dumps / f"mysql_{time.strftime('%Y%m%d')}.sql")
        time.sleep(1.0)  # and some after it: the RPO the drill measures
        self.env = {"MARIADB_SOURCE_URL": self.source.url, "MARIADB_SCRATCH_URL": self.target.url,
                    "MARIADB_SOURCE_PORT": str(self.source_port), "MARIADB_SCRATCH_PORT": str(self.scratch_port),
                    "DRILL_DUMP_DIR": str(dumps)}
        return self.env

    def dump(self, path: Path) -> None:
        """Seed 003 §8.1's daily backup: mysqldump --all-databases --single-transaction."""
        with open(path, "w") as out:
            r = subprocess.run(["mysqldump", f"--socket={self.source.socket}", "--user=root", "--all-databases",
                                "--single-transaction", *self.dump_args], stdout=out, stderr=subprocess.PIPE,
                               text=True, timeout=300)
        if r.returncode != 0:
            raise EnvironmentNotReady(f"mysqldump failed: {r.stderr.strip()[-300:]}")

    def _write(self) -> None:
        """A timestamped row every 0.1 s, through one client session (like the app)."""
        proc = subprocess.Popen(["mariadb", f"--socket={self.source.socket}", "--user=root", "--batch"],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        try:
            while not self._stop.wait(0.1):
                proc.stdin.write(f"INSERT INTO {self.writer_table} (note) VALUES ('tick');\n")
                proc.stdin.flush()
                self.writes += 1
        except (BrokenPipeError, OSError):
            pass
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()

    def stop(self) -> list[str]:
        self._stop.set()
        if self._writer:
            self._writer.join(10)
        for db in (self.target, self.source):
            if db:
                db.stop()
        return self.scratch.teardown() if self.scratch else []

    def __enter__(self) -> "MariaDbTestBed":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

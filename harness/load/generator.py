"""The harness side of load generation: start Locust's child process, read its view.

See harness.load.child for why Locust runs in its own process. Every record the
child streams is stored in a :class:`ClientSeries` and handed to listeners at once
(the guard evaluates abort conditions on each), so a breach is acted on within
about one interval (0.1 s) of the requests that showed it.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import EnvironmentNotReady, InvalidInput
from harness.sli.client import ClientSeries

log = logging.getLogger(__name__)


@dataclass
class LoadSpec:
    locustfile: str
    users: int = 20
    spawn_rate: float = 20.0
    host: str | None = None  # default: the target's load host
    warmup: float = 5.0
    workers: int = 0  # >0: Locust distributed mode with local worker processes
    expect_workers: int = 0  # remote workers to wait for (harness load-worker)
    master_bind: str = "127.0.0.1:0"
    interval: float = 0.1


class LoadGenerator:
    def __init__(self, spec: LoadSpec, host: str, base_dir: Path | None = None):
        path = Path(spec.locustfile)
        if not path.is_absolute() and base_dir is not None and not path.exists():
            path = base_dir / path
        if not path.exists():
            raise InvalidInput(f"locustfile not found: {spec.locustfile}")
        self.spec = spec
        self.locustfile = path.resolve()
        self.host = host
        self.series = ClientSeries()
        self.listeners: list[Callable[[dict], None]] = []
        self.proc: subprocess.Popen | None = None
        self.started_at: float | None = None
        self.stderr_tail: list[str] = []
        self._reader: threading.Thread | None = None
        self._started = threading.Event()
        self.error: str | None = None
        #: when the newest record arrived (this process's clock): the guard's watchdog
        self.last_record_at: float | None = None
        #: distributed mode: workers ready at the start, and each worker's silence (s)
        #: as of the newest record
        self.workers_ready = 0
        self.worker_ages: dict[str, float] = {}

    def start(self, timeout: float = 60.0) -> None:
        argv = [
            sys.executable, "-m", "harness.load.child",
            "--locustfile", str(self.locustfile), "--host", self.host,
            "--users", str(self.spec.users), "--spawn-rate", str(self.spec.spawn_rate),
            "--interval", str(self.spec.interval),
        ]
        if self.spec.workers or self.spec.expect_workers:
            argv += ["--workers", str(self.spec.workers), "--expect-workers",
                     str(self.spec.expect_workers), "--master-bind", self.spec.master_bind]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1, env=env,
        )
        self._reader = threading.Thread(target=self._read, name="load-reader", daemon=True)
        self._reader.start()
        threading.Thread(target=self._read_stderr, name="load-stderr", daemon=True).start()
        if self.spec.workers or self.spec.expect_workers:
            timeout += 60  # the child waits up to 60 s for its workers before it starts
        if not self._started.wait(timeout) or self.error:
            self.stop()
            raise EnvironmentNotReady(
                f"the load generator did not start: {self.error or 'no answer'}\n"
                + "\n".join(self.stderr_tail[-10:])
            )
        expected = max(self.spec.workers, self.spec.expect_workers)
        if expected and self.workers_ready < expected:
            self.stop()
            raise EnvironmentNotReady(
                f"only {self.workers_ready} of the {expected} load workers joined the master at "
                f"{self.spec.master_bind} within 60s: a run with part of its load would judge the system "
                f"on fewer users than it says (start them with `harness load-worker --master HOST:PORT`)")
        self.started_at = time.time()

    def _read(self) -> None:
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if "error" in rec:
                self.error = rec["error"]
                self._started.set()
                continue
            if rec.get("event") == "started":
                self._started.set()
                continue
            if rec.get("event") == "workers":
                self.workers_ready = rec.get("ready", 0)
                continue
            if "event" in rec:
                continue
            if "workers" in rec:
                self.worker_ages = rec.pop("workers")
            self.last_record_at = time.time()
            self.series.add(rec)
            for listener in list(self.listeners):
                try:
                    listener(rec)
                except Exception:  # noqa: BLE001 - a listener must not stop the stream
                    log.exception("load listener failed")
        if not self._started.is_set():
            self.error = self.error or "the Locust process exited"
            self._started.set()

    def _read_stderr(self) -> None:
        assert self.proc and self.proc.stderr
        for line in self.proc.stderr:
            self.stderr_tail.append(line.rstrip())
            del self.stderr_tail[:-50]

    def set_users(self, users: int, spawn_rate: float | None = None) -> None:
        self._send({"users": users, "spawn_rate": spawn_rate or self.spec.spawn_rate})

    def _send(self, cmd: dict) -> None:
        if self.proc and self.proc.stdin and self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps(cmd) + "\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass

    def silent_worker(self, now: float, bound: float) -> str | None:
        """A worker that sent nothing for longer than ``bound`` (distributed mode), or the
        start's worker count no longer reached; None when every worker is reporting."""
        if not self.worker_ages:
            return None
        since_record = now - (self.last_record_at or now)
        for worker, age in sorted(self.worker_ages.items(), key=lambda kv: -kv[1]):
            if age + since_record > bound:
                return f"worker {worker} sent nothing for {age + since_record:.1f}s"
        return None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_text(self) -> str:
        """How the child ended, for the guard's "blind" verdict."""
        if self.proc is None:
            return "never started"
        code = self.proc.poll()
        if code is None:
            return "still running"
        if code < 0:
            import signal as _signal

            try:
                return f"killed by {_signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        tail = "; ".join(self.stderr_tail[-2:])
        return f"exit code {code}" + (f": {tail}" if tail else "")

    def stop(self) -> None:
        if not self.proc:
            return
        if self.proc.poll() is None:
            self._send({"stop": True})
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
        if self._reader:
            self._reader.join(2)

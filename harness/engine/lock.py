"""The run lock: one experiment at a time on a machine (SPEC §3: never several at once)."""
from __future__ import annotations

import fcntl
import os
import time

from harness.errors import LockHeld
from harness.state import state_root


class RunLock:
    """Only one experiment at a time on a machine (SPEC §3: never several at once).

    flock is released by the kernel when the holder dies, even by SIGKILL.
    """

    def __init__(self) -> None:
        self.path = state_root() / "run.lock"
        self.fd: int | None = None

    def acquire(self, what: str, wait: float = 0.0) -> None:
        """Take the lock; wait up to ``wait`` seconds for another run to finish."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.time() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.time() < deadline:
                    time.sleep(0.5)
                    continue
                holder = os.pread(fd, 4096, 0).decode(errors="replace").strip()
                os.close(fd)
                raise LockHeld(f"another experiment is running ({holder or 'unknown'}); "
                               "experiments never run at once (use --wait to queue)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {what}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def holder_pid(self) -> int | None:
        try:
            text = self.path.read_text()
            return int(text.split()[1].rstrip(":")) if text.startswith("pid") else None
        except (FileNotFoundError, ValueError, IndexError):
            return None

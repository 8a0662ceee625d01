"""Small wrappers for the system commands the lab drives (ip, iptables).

We call ``ip``/``iptables`` rather than pyroute2 for set-up: each call takes a few
milliseconds here (measured 3-5 ms), the commands are what an SRE would type to
inspect or undo by hand, and iptables has no netlink API anyway.
"""
from __future__ import annotations

import logging
import subprocess

from harness.errors import EnvironmentNotReady

log = logging.getLogger(__name__)


def run(*args: str, check: bool = True, netns: str | None = None) -> subprocess.CompletedProcess:
    cmd = list(args)
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    log.debug("$ %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise EnvironmentNotReady(
            f"'{cmd[0]}' is not installed (run the README's set-up command)"
        ) from None
    if check and proc.returncode != 0:
        raise EnvironmentNotReady(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.strip()}"
        )
    return proc


def ok(*args: str, netns: str | None = None) -> bool:
    return run(*args, check=False, netns=netns).returncode == 0

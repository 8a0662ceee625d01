"""Install what the full lab needs that Debian does not ship as a package: Patroni.

PostgreSQL refuses to run as root, so Patroni runs as the ``postgres`` user, which
cannot read a Python installed under /root (the harness's own venv). Patroni therefore
gets its own venv built from the system Python (/usr/bin/python3), readable by
everyone, at :data:`PATRONI_VENV`.

``python -m harness.lab.install`` (the README's set-up runs it) is idempotent and
returns at once when the right version is already there.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PATRONI_VENV = Path(os.environ.get("HARNESS_PATRONI_VENV", "/opt/resilience-harness/patroni-venv"))
PATRONI_REQUIREMENTS = ["patroni[etcd]==4.1.5", "psycopg[binary]==3.3.*"]
PATRONI_VERSION = "4.1.5"
SYSTEM_PYTHON = "/usr/bin/python3"
TOXIPROXY_FALLBACK = "/opt/rh-gobin/server"


def _say(msg: str) -> None:
    print(f"[harness install] {msg}", flush=True)


def patroni_bin() -> Path:
    return PATRONI_VENV / "bin" / "patroni"


def patroni_installed() -> bool:
    """True when the venv holds Patroni of the pinned version (no subprocess: fast)."""
    if not patroni_bin().exists():
        return False
    site = list((PATRONI_VENV / "lib").glob("python3*/site-packages"))
    return any((s / f"patroni-{PATRONI_VERSION}.dist-info").exists() for s in site)


def ensure_patroni(verbose: bool = True) -> Path:
    """Create the Patroni venv if needed; return the path of the ``patroni`` binary."""
    say = _say if verbose else (lambda msg: None)
    if patroni_installed():
        say(f"patroni {PATRONI_VERSION} already installed: {patroni_bin()}")
        return patroni_bin()
    if not Path(SYSTEM_PYTHON).exists():
        raise SystemExit(f"{SYSTEM_PYTHON} is missing: install Debian's python3 and python3-venv")
    PATRONI_VENV.parent.mkdir(parents=True, exist_ok=True)
    if not (PATRONI_VENV / "bin" / "python").exists():
        say(f"creating venv {PATRONI_VENV} from {SYSTEM_PYTHON}")
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(PATRONI_VENV)], check=True)
    say("installing " + " ".join(PATRONI_REQUIREMENTS))
    subprocess.run(
        [str(PATRONI_VENV / "bin" / "pip"), "install", "--quiet", *PATRONI_REQUIREMENTS],
        check=True,
    )
    # The postgres user must be able to read and run it.
    for root, dirs, files in os.walk(PATRONI_VENV.parent):
        for name in dirs + files:
            p = os.path.join(root, name)
            try:
                mode = os.lstat(p).st_mode
                if not os.path.islink(p):
                    os.chmod(p, mode | 0o044 | (0o011 if mode & 0o100 or name in dirs else 0))
            except OSError:
                pass
    os.chmod(PATRONI_VENV.parent, 0o755)
    if not patroni_installed():
        raise SystemExit(f"patroni did not install into {PATRONI_VENV}")
    say(f"patroni {PATRONI_VERSION} installed: {patroni_bin()}")
    return patroni_bin()


def toxiproxy_server() -> str | None:
    """Path of the Toxiproxy server binary (set-up installs it as ``toxiproxy-server``)."""
    found = shutil.which("toxiproxy-server")
    if found:
        return found
    return TOXIPROXY_FALLBACK if os.access(TOXIPROXY_FALLBACK, os.X_OK) else None


def main() -> None:
    ensure_patroni()
    tp = toxiproxy_server()
    _say(f"toxiproxy server: {tp or 'MISSING (build it with go install, see README)'}")
    for tool in ("etcd", "etcdctl", "pgbackrest", "haproxy", "prometheus", "prometheus-alertmanager"):
        _say(f"{tool}: {shutil.which(tool) or 'MISSING'}")
    pg = Path("/usr/lib/postgresql/15/bin/postgres")
    _say(f"postgresql 15: {pg if pg.exists() else 'MISSING'}")
    sys.exit(0)


if __name__ == "__main__":
    main()

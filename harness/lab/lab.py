"""``harness lab up / status / down``: the local lab as one object."""
from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path

from harness.errors import EnvironmentNotReady
from harness.lab import network, procs, sh
from harness.lab.component import Component, Health
from harness.lab.config import LabConfig, default_run_dir
from harness.lab.core import HAProxy, OrchestratorComponent, PrometheusServer, Zones

log = logging.getLogger(__name__)

Progress = Callable[[str], None]



def extra_components(cfg: LabConfig) -> list[Component]:
    """Database, Toxiproxy, dependency and alerting components (the full lab).
    Kept apart so the minimal lab works without them."""
    out: list[Component] = []
    try:
        from harness.lab import full  # noqa: WPS433 - optional part of the lab
    except ImportError:
        return out
    return full.components(cfg)


class Lab:
    def __init__(self, cfg: LabConfig):
        self.cfg = cfg
        self.zones = Zones(cfg)
        self.extra = extra_components(cfg)
        self.haproxy = HAProxy(cfg)
        self.orchestrator = OrchestratorComponent(cfg)
        jobs = [j for c in [*self.extra, self.haproxy, self.orchestrator] for j in c.prometheus_jobs()]
        has_am = any(c.name == "alertmanager" for c in self.extra)
        self.prometheus = PrometheusServer(cfg, jobs, alertmanager=has_am)

    @classmethod
    def open(cls, run_dir: str | Path | None = None) -> "Lab":
        """The lab that `lab up` started (reads its lab.json)."""
        return cls(LabConfig.load(run_dir or os.environ.get("HARNESS_LAB_DIR") or default_run_dir()))

    @property
    def components(self) -> list[Component]:
        pre = [c for c in self.extra if getattr(c, "before_service", True)]
        post = [c for c in self.extra if not getattr(c, "before_service", True)]
        return [self.zones, *pre, self.haproxy, self.orchestrator, *post, self.prometheus]

    # -- up ----------------------------------------------------------------------
    def _claim(self) -> None:
        """Refuse a second lab with the same prefix or colliding ports."""
        lock_path = self.cfg.root.parent / f"lab-{self.cfg.prefix}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        existing = self.cfg.path("lab.json")
        if existing.exists():
            other = json.loads(existing.read_text())
            if other.get("run_dir") == self.cfg.run_dir and other != json.loads(json.dumps(self.cfg.__dict__)):
                if procs.names(self.cfg) and any(procs.running(self.cfg, n) for n in procs.names(self.cfg)):
                    raise EnvironmentNotReady(
                        f"a lab with prefix '{self.cfg.prefix}' is already running with other settings "
                        f"({existing}); run `harness lab down` first"
                    )
        # Another lab (other prefix) on the same subnet would fight over the routes.
        addrs = sh.run("ip", "-o", "-4", "addr", "show", check=False).stdout
        for line in addrs.splitlines():
            parts = line.split()
            if len(parts) > 3 and parts[3].startswith(f"{self.cfg.subnet}.") and parts[1] != self.cfg.bridge:
                raise EnvironmentNotReady(
                    f"subnet {self.cfg.subnet}.0/24 is already used by {parts[1]} (another lab?); "
                    f"choose another with --subnet"
                )
        for name in ("lb", "prometheus", "orchestrator"):
            port = self.cfg.port(name)
            if self._port_taken(port) and not procs.names(self.cfg):
                raise EnvironmentNotReady(
                    f"port {port} ({name}) is already in use by another program: is another lab "
                    f"running? Choose other ports with --port-base"
                )

    @staticmethod
    def _port_taken(port: int) -> bool:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return True
        return False

    #: what the data in the run directory depends on: etcd and Patroni members per zone
    SHAPE = ("zones", "with_db", "sync_replication", "prefix", "subnet", "port_base")

    def _start_clean_if_reshaped(self, progress: Progress) -> None:
        """Data left by a lab of another shape (e.g. three zones, now ``--zones a``) would
        be reused by etcd and Patroni and fail with pages of their logs: nothing of that
        lab runs (``_claim`` checked), so its run directory is removed and this lab starts
        clean, saying so in one line."""
        existing = self.cfg.path("lab.json")
        if not existing.exists():
            return
        old = json.loads(existing.read_text())
        changed = [k for k in self.SHAPE if k in old and old[k] != getattr(self.cfg, k)]
        if not changed:
            return
        was = ", ".join(f"{k} {old[k]} (now {getattr(self.cfg, k)})" for k in changed)
        msg = f"the data in {self.cfg.root} was made by a lab of another shape ({was}): starting clean"
        log.warning(msg)
        progress(msg)
        self.purge()

    def up(self, progress: Progress = lambda msg: None) -> float:
        """Start everything (idempotent). Returns seconds taken."""
        t0 = time.monotonic()
        self._claim()
        self._start_clean_if_reshaped(progress)
        for d in ("logs", "pids", "data"):
            self.cfg.path(d).mkdir(parents=True, exist_ok=True)
        self.cfg.save()
        with open(self.cfg.root.parent / f"lab-{self.cfg.prefix}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            args: dict[str, str] = {}
            for c in self.extra:
                args.update(c.service_args())
            self.cfg.path("service.json").write_text(json.dumps(args))
            for c in self.components:
                progress(f"starting {c.name}")
                t = time.monotonic()
                if c is self.haproxy:
                    self.haproxy.start("".join(x.haproxy_sections() for x in self.extra))
                else:
                    c.start()
                log.info("%s up in %.2fs", c.name, time.monotonic() - t)
        return time.monotonic() - t0

    # -- down --------------------------------------------------------------------
    def down(self, progress: Progress = lambda msg: None) -> list[str]:
        """Stop everything and remove what the lab created. Returns leftovers (empty = clean)."""
        for c in reversed(self.components):
            progress(f"stopping {c.name}")
            try:
                c.stop()
            except Exception as exc:  # noqa: BLE001 - keep tearing down the rest
                log.warning("stopping %s: %s", c.name, exc)
        for name in procs.names(self.cfg):  # anything a component forgot
            procs.stop(self.cfg, name)
        return self.leftovers()

    def leftovers(self) -> list[str]:
        left = network.leftovers(self.cfg)
        left += [f"process {n}" for n in procs.names(self.cfg) if procs.running(self.cfg, n)]
        return left

    def purge(self) -> None:
        """Delete the run directory (data, logs). Only after down()."""
        shutil.rmtree(self.cfg.root, ignore_errors=True)

    # -- status ------------------------------------------------------------------
    def status(self) -> list[Health]:
        out: list[Health] = []
        for c in self.components:
            try:
                out += c.health()
            except Exception as exc:  # noqa: BLE001
                out.append(Health(c.name, "", False, f"health check failed: {exc}"))
        return out

    def healthy(self) -> bool:
        return all(h.ok for h in self.status())

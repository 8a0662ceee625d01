"""The local lab as a target: faults and checks act on real processes and namespaces.

Its faults are the modules of ``harness/targets/lab/faults/`` and its checks those of
``harness/targets/lab/checks/``, each registered with ``@registry.fault("lab")`` /
``@registry.check("lab")`` (see :mod:`harness.targets.registry`).
"""
from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from harness.errors import EnvironmentNotReady
from harness.lab.config import LabConfig
from harness.lab.core import USER_REQUESTS
from harness.lab.lab import Lab
from harness.targets.base import Target


class LabTarget(Target):
    kind = "lab"
    marker = "lab"
    #: the lab's health and metrics endpoints are route="other": not what users call
    request_selector = USER_REQUESTS

    def __init__(self, cfg: LabConfig):
        self.cfg = cfg
        self.lab = Lab(cfg)
        self.prometheus_url = cfg.prometheus_url
        self.alertmanager_url = cfg.alertmanager_url if any(c.name == "alertmanager" for c in self.lab.extra) else None
        self.load_host = cfg.load_host

    @classmethod
    def open(cls, run_dir: str | None = None) -> "LabTarget":
        return cls(Lab.open(run_dir).cfg)

    @classmethod
    def planned(cls, run_dir: str | None = None) -> "LabTarget":
        """The running lab if there is one, else the lab `harness lab up` would start
        (default shape): enough to validate experiments against it without a lab."""
        try:
            return cls.open(run_dir)
        except EnvironmentNotReady:
            return cls(LabConfig())

    def describe(self) -> dict[str, Any]:
        return {"kind": "lab", "run_dir": self.cfg.run_dir}

    @classmethod
    def from_description(cls, description: dict[str, Any]) -> "LabTarget":
        return cls.open(description["run_dir"])

    #: how long the preflight gives a lab that is not healthy to become so before it refuses:
    #: a replica's one slow readiness answer, or its restart after an earlier fault, is a
    #: blip the lab heals by itself; a lab still unhealthy after this is not one to test
    PREFLIGHT_SETTLE = 15.0

    def preflight(self) -> None:
        deadline = time.monotonic() + self.PREFLIGHT_SETTLE
        while True:
            bad = [h for h in self.lab.status() if not h.ok]
            if not bad or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        if bad:
            lines = "\n".join(f"  {h.name} {h.address}: {h.detail}" for h in bad)
            raise EnvironmentNotReady(
                f"the lab is not healthy (still, after {self.PREFLIGHT_SETTLE:g}s), refusing to inject anything:\n"
                f"{lines}\n(see `harness lab status`; `harness lab up` repairs what it can)"
            )

    # -- helpers used by faults and checks ----------------------------------------
    def orchestrator_state(self) -> dict:
        url = f"http://127.0.0.1:{self.cfg.port('orchestrator')}/state"
        with urllib.request.urlopen(url, timeout=2) as r:
            return json.loads(r.read())

    def replicas(self, selector: dict[str, str] | None = None) -> list[dict]:
        selector = selector or {}
        return [
            r for r in self.orchestrator_state()["replicas"]
            if all(r["labels"].get(k) == v for k, v in selector.items())
        ]

    def notifications(self, since: float) -> list[dict]:
        """Notifications the lab's webhook receivers recorded since ``since``."""
        if self.alertmanager_url is None:
            return []
        from harness.lab import alerting

        return alerting.notifications(self.cfg, since=since)

    def snapshot(self) -> dict[str, Any]:
        try:
            state = self.orchestrator_state()
        except Exception:  # noqa: BLE001 - a missing sample is fine
            return {}
        reps = state["replicas"]
        snap: dict[str, Any] = {
            "replicas_desired": state["desired"],
            "replicas_running": sum(1 for r in reps if r["pid"]),
            "replicas_ready": sum(1 for r in reps if r["ready"]),
            "cpu_utilization": state.get("cpu_utilization"),
        }
        if self.cfg.with_db:
            snap.update(self._db_roles())
        return snap

    def _db_roles(self) -> dict[str, Any]:
        """DB role per member for charts: 2 primary, 1 replica streaming, 0 not serving."""
        from harness.lab import db

        state = db.cluster_state(self.cfg, timeout=0.3) or {}
        members = {m["name"]: m for m in state.get("members", [])}
        out: dict[str, Any] = {}
        for zone in self.cfg.zones:
            m = members.get(db.member_name(zone)) or {}
            role, st = m.get("role"), m.get("state")
            if role in ("leader", "master", "primary") and st == "running":
                out[f"db_role_{zone}"] = 2
            elif st in ("streaming", "running"):
                out[f"db_role_{zone}"] = 1
            else:
                out[f"db_role_{zone}"] = 0
        return out

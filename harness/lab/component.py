"""What a lab component is: something ``lab up`` starts, ``lab status`` shows and
``lab down`` stops. Components start in list order and stop in reverse order."""
from __future__ import annotations

from dataclasses import dataclass

from harness.lab.config import LabConfig


@dataclass
class Health:
    name: str
    address: str
    ok: bool
    detail: str = ""


class Component:
    name: str = "component"

    def __init__(self, cfg: LabConfig):
        self.cfg = cfg

    def start(self) -> None:
        """Start (idempotent: a healthy component is left alone). Wait until healthy;
        raise EnvironmentNotReady naming the component and its log file otherwise."""

    def stop(self) -> None:
        """Stop and remove what it created (idempotent)."""

    def health(self) -> list[Health]:
        return []

    def prometheus_jobs(self) -> list[dict]:
        """Scrape configs this component wants in Prometheus."""
        return []

    def service_args(self) -> dict[str, str]:
        """Command-line options this component adds to every api replica
        (e.g. ``{"db": "host=... port=..."}``)."""
        return {}

    def haproxy_sections(self) -> str:
        """Extra HAProxy config sections (e.g. the database's read-write listener)."""
        return ""

"""A target is where an experiment runs: the local lab, a Kubernetes cluster, ...

The experiment names *what* fails; the target decides *how* that is done there.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from harness.checks.base import Check
from harness.errors import InvalidInput
from harness.faults.base import Fault


class Target(ABC):
    kind: ClassVar[str]
    faults: ClassVar[dict[str, type[Fault]]] = {}
    checks: ClassVar[dict[str, type[Check]]] = {}

    #: Prometheus and Alertmanager base URLs, when the target has them.
    prometheus_url: str | None = None
    alertmanager_url: str | None = None
    #: Base URL the load generator sends traffic to, when the target has one.
    load_host: str | None = None

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-able description from which :meth:`from_description` rebuilds it."""

    @classmethod
    @abstractmethod
    def from_description(cls, description: dict[str, Any]) -> "Target":
        ...

    def preflight(self) -> None:
        """Raise EnvironmentNotReady / TargetRefused before anything is touched."""

    def fault(self, kind: str, params: dict[str, Any]) -> Fault:
        try:
            cls = self.faults[kind]
        except KeyError:
            raise InvalidInput(
                f"fault '{kind}' is not available on the {self.kind} target "
                f"(available here: {', '.join(sorted(self.faults)) or 'none'})"
            ) from None
        return cls(self, params)

    def check(self, kind: str, params: dict[str, Any]) -> Check:
        try:
            cls = self.checks[kind]
        except KeyError:
            raise InvalidInput(
                f"check '{kind}' is not available on the {self.kind} target "
                f"(available here: {', '.join(sorted(self.checks)) or 'none'})"
            ) from None
        return cls(self, params)

    def snapshot(self) -> dict[str, Any]:
        """Target-specific gauges sampled once a second into the run's time series
        (replicas, DB roles...). Must be quick; empty when there is nothing."""
        return {}

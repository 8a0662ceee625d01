"""A target is where an experiment runs: the local lab, a Kubernetes cluster, ...

The experiment names *what* fails; the target decides *how* that is done there.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from harness.checks.base import Check
from harness.errors import InvalidInput
from harness.faults.base import Fault
from harness.targets import registry


class Target(ABC):
    kind: ClassVar[str]
    #: pytest marker of experiment items that run on this kind of target
    marker: ClassVar[str] = ""
    #: label matchers that select user requests on this target's request counters
    #: (see harness.sli.vocabulary); empty: every request counts
    request_selector: str = ""

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

    @classmethod
    def faults(cls) -> dict[str, type[Fault]]:
        """The faults this kind of target implements (harness.targets.registry)."""
        return registry.implementations(cls.kind, "fault")

    @classmethod
    def checks(cls) -> dict[str, type[Check]]:
        """The checks this kind of target implements."""
        return registry.implementations(cls.kind, "check")

    def fault(self, kind: str, params: dict[str, Any]) -> Fault:
        impl = self.faults()
        if kind not in impl:
            raise InvalidInput(f"fault '{kind}' is not available on the {self.kind} target "
                               f"(available here: {', '.join(sorted(impl)) or 'none'})")
        return impl[kind](self, params)

    def check(self, kind: str, params: dict[str, Any]) -> Check:
        impl = self.checks()
        if kind not in impl:
            raise InvalidInput(f"check '{kind}' is not available on the {self.kind} target "
                               f"(available here: {', '.join(sorted(impl)) or 'none'})")
        return impl[kind](self, params)

    def snapshot(self) -> dict[str, Any]:
        """Target-specific gauges sampled once a second into the run's time series
        (replicas, DB roles...). Must be quick; empty when there is nothing."""
        return {}

"""The guard: abort conditions evaluated continuously, acted on at once, and never blind.

Client-side conditions are evaluated on every record the load generator streams
(~every 0.1 s), in the reader's thread; elapsed-time conditions and the watchdog by a
thread every 0.1 s; Prometheus conditions by another thread once per ``poll`` seconds.
When a condition trips, ``on_trip`` is called exactly once, from whichever thread saw
it; the engine reverts every fault right there, before it even tells Chaos Toolkit to
stop (Chaos Toolkit's own safeguards only interrupt, and its rollbacks wait for the
blocking activity to finish).

Failing closed: a guard that cannot see is worse than none, because the fault stays
in while everyone believes it is watched. So while armed (that is, while any fault is
active) the guard also trips, as "guard blind: <source> <why>", when

* the load generator's process exits, or its records stop arriving for longer than
  ``bounds.load`` (a frozen or starved process, not only a dead one);
* Prometheus, which some abort condition reads, fails to answer for longer than
  ``bounds.prometheus`` (refused, timed out, error).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from harness.errors import SourceUnavailable
from harness.experiment.model import AbortCondition, GuardBounds
from harness.quantities import format_duration, render_value
from harness.sli.client import ClientSeries
from harness.sli.prometheus import Prometheus

WATCH_EVERY = 0.1


class LoadSource(Protocol):
    """What the guard needs of the load generator (harness.load.generator)."""

    @property
    def alive(self) -> bool: ...

    @property
    def last_record_at(self) -> float | None: ...

    def exit_text(self) -> str: ...

    def silent_worker(self, now: float, bound: float) -> str | None: ...


@dataclass
class Trip:
    condition: AbortCondition
    observed: float | None
    at: float  # when the guard decided
    breach_seen_at: float  # timestamp of the load record that showed the breach (load source)
    blind: str | None = None  # the source the guard lost ("load generator", "prometheus")

    def message(self) -> str:
        if self.blind:
            return f"guard blind: {self.condition.text}"
        unit = self.condition.objective.unit if self.condition.objective else "number"
        obs = render_value(self.observed, unit)
        why = f" ({self.condition.reason})" if self.condition.reason else ""
        return f"abort condition '{self.condition.text}' tripped: observed {obs}{why}"


class Guard:
    def __init__(
        self,
        conditions: list[AbortCondition],
        series: ClientSeries | None,
        prometheus: Prometheus | None,
        on_trip: Callable[[Trip], None],
        poll: float = 1.0,
        load: LoadSource | None = None,
        bounds: GuardBounds | None = None,
    ):
        self.conditions = conditions
        self.series = series
        self.prometheus = prometheus
        self.on_trip = on_trip
        self.poll = poll
        self.load = load
        self.bounds = bounds or GuardBounds()
        self.started_at: float | None = None
        self.tripped: Trip | None = None
        self._armed = False
        self._lock = threading.Lock()
        self._breach_since: dict[int, float] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.prometheus_ok_at: float | None = None
        self.prometheus_error: str | None = None

    @property
    def watches_prometheus(self) -> bool:
        return any(c.source == "prometheus" for c in self.conditions)

    def arm(self) -> None:
        """Start guarding (when the first fault is about to be injected)."""
        self.started_at = time.time()
        self.prometheus_ok_at = self.started_at
        self._armed = True
        self._threads = [threading.Thread(target=self._watch_loop, name="guard-watch", daemon=True)]
        if self.watches_prometheus:
            self._threads.append(threading.Thread(target=self._prometheus_loop, name="guard-prometheus",
                                                  daemon=True))
        for t in self._threads:
            t.start()

    def disarm(self) -> None:
        self._armed = False
        self._stop.set()

    # -- evaluation ------------------------------------------------------------------
    def on_load_record(self, rec: dict) -> None:
        """Listener for the load generator: evaluate client-side conditions now."""
        if not self._armed or self.tripped or self.series is None:
            return
        now = rec["t"]
        for i, cond in enumerate(self.conditions):
            if cond.source != "load" or cond.sli in (None, "elapsed"):
                continue
            w = self.series.window(now - cond.window, now)
            self._judge(i, cond, w.sli(cond.sli), now)

    def _watch_loop(self) -> None:
        while not self._stop.wait(WATCH_EVERY):
            if not self._armed or self.tripped:
                return
            now = time.time()
            for i, cond in enumerate(self.conditions):
                if cond.sli == "elapsed":
                    self._judge(i, cond, now - (self.started_at or now), now)
            self._watch_load(now)
            self._watch_prometheus(now)

    def _watch_prometheus(self, now: float) -> None:
        """Judged here, every 0.1 s, not where a query returns: a frozen Prometheus
        holds each query for its whole time-out, and the bound must not stretch with it."""
        if not self.watches_prometheus:
            return
        since = self.prometheus_ok_at or self.started_at or now
        if now - since > self.bounds.prometheus:
            why = self.prometheus_error or "queries still waiting for an answer"
            self._blind("prometheus", f"prometheus: no answer for {format_duration(now - since)} "
                                      f"(bound {format_duration(self.bounds.prometheus)}): {why}")

    def _watch_load(self, now: float) -> None:
        if self.load is None:
            return
        if not self.load.alive:
            self._blind("load generator", f"load generator: its process exited ({self.load.exit_text()}); "
                                          "the users' view is gone")
            return
        silent = self.load.silent_worker(now, self.bounds.load)
        if silent:
            self._blind("load generator", f"load generator: {silent} (a load machine lost mid-run; bound "
                                          f"{format_duration(self.bounds.load)}): the users' view is partial")
            return
        last = self.load.last_record_at or self.started_at or now
        if now - last > self.bounds.load:
            self._blind("load generator",
                        f"load generator: no record for {format_duration(now - last)} "
                        f"(stalled or starved; bound {format_duration(self.bounds.load)})")

    def _prometheus_loop(self) -> None:
        while not self._stop.wait(self.poll):
            if not self._armed or self.tripped:
                return
            for i, cond in enumerate(self.conditions):
                if cond.source != "prometheus" or self.tripped:
                    continue
                now = time.time()
                if self.prometheus is None:
                    self._blind("prometheus", "prometheus: the target has no Prometheus to read")
                    return
                query = cond.query or self.prometheus.sli_query(str(cond.sli))
                try:
                    value = self.prometheus.read(query, cond.window)
                except SourceUnavailable as exc:
                    self.prometheus_error = str(exc)  # the watch loop judges how long
                    continue
                self.prometheus_ok_at = time.time()
                self._judge(i, cond, value, now)

    def _judge(self, i: int, cond: AbortCondition, value: float | None, seen_at: float) -> None:
        if value is None or cond.objective is None:
            self._breach_since.pop(i, None)
            return
        if cond.objective.holds(value):  # the objective IS the breach condition
            since = self._breach_since.setdefault(i, seen_at)
            if seen_at - since >= cond.hold:
                self._trip(Trip(cond, value, time.time(), seen_at))
        else:
            self._breach_since.pop(i, None)

    def _blind(self, source: str, why: str) -> None:
        cond = AbortCondition(text=why, reason=f"the guard lost its {source}")
        now = time.time()
        self._trip(Trip(cond, None, now, now, blind=source))

    def _trip(self, trip: Trip) -> None:
        with self._lock:
            if self.tripped:
                return
            self.tripped = trip
        self._armed = False
        self.on_trip(trip)

    def manual_stop(self, reason: str) -> None:
        """Emergency stop by a person (harness stop, Ctrl-C)."""
        cond = AbortCondition(text=f"manual stop: {reason}", reason=reason)
        self._trip(Trip(cond, None, time.time(), time.time()))

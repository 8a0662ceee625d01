"""The guard: abort conditions evaluated continuously, acted on at once.

Client-side conditions are evaluated on every record the load generator streams
(~every 0.1 s), in the reader's thread; Prometheus and elapsed-time conditions by a
thread once per ``poll`` seconds. When a condition trips, ``on_trip`` is called
exactly once, from whichever thread saw it; the engine reverts every fault right
there, before it even tells Chaos Toolkit to stop (Chaos Toolkit's own safeguards
only interrupt, and its rollbacks wait for the blocking activity to finish).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.experiment.model import AbortCondition
from harness.quantities import render_value
from harness.sli.client import ClientSeries
from harness.sli.prometheus import Prometheus


@dataclass
class Trip:
    condition: AbortCondition
    observed: float | None
    at: float  # when the guard decided
    breach_seen_at: float  # timestamp of the load record that showed the breach (load source)

    def message(self) -> str:
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
    ):
        self.conditions = conditions
        self.series = series
        self.prometheus = prometheus
        self.on_trip = on_trip
        self.poll = poll
        self.started_at: float | None = None
        self.tripped: Trip | None = None
        self._armed = False
        self._lock = threading.Lock()
        self._breach_since: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def arm(self) -> None:
        """Start guarding (when the first fault is about to be injected)."""
        self.started_at = time.time()
        self._armed = True
        self._thread = threading.Thread(target=self._poll_loop, name="guard", daemon=True)
        self._thread.start()

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
            value = w.sli(cond.sli)
            self._judge(i, cond, value, now)

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll):
            if not self._armed or self.tripped:
                return
            now = time.time()
            for i, cond in enumerate(self.conditions):
                if cond.sli == "elapsed":
                    self._judge(i, cond, now - (self.started_at or now), now)
                elif cond.source == "prometheus" and self.prometheus and cond.query:
                    self._judge(i, cond, self.prometheus.value(cond.query, cond.window), now)

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

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

The guard also watches itself. Its loop ticks every 0.1 s; a tick over ``OWN_GAP``
late (by the wall clock or the monotonic one) means the harness itself did not run:
the machine was paused (a VM snapshot or migration stops every process at once, and the
guest's wall clock is then stepped to the true time) or the harness was starved, or the
wall clock was stepped. A gap in the load records that long is then nobody's stall in
particular, and judging it as the load generator's would abort on the hypervisor (it
did, in CI: "no record for 7.7s" right when the kernel logged a virtual machine fork).
So the gap is written down (``pauses``, ``on_note``: the journal and the report show
it) and each source's bound is counted again from the tick that saw it, once per
silence of that source: still failing closed, a source that does not come back within
its bound after the resume trips the guard as before, and a harness starved tick after
tick cannot push a silent source's bound away. (Linux's soft-lockup watchdog makes the same distinction for a paused
guest, with the hypervisor's "guest stopped" flag.)
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
#: a tick of the 0.1 s watch loop this late: the harness itself did not run (see above)
OWN_GAP = 1.0


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
        on_note: Callable[[str], None] | None = None,
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
        self.on_note = on_note
        #: (wall time of the late tick, wall-clock gap, monotonic gap) of every time the
        #: harness itself did not run; the bounds count from ``resumed_at``
        self.pauses: list[tuple[float, float, float]] = []
        self.resumed_at: float | None = None
        #: per source, the moment its bound was last restarted after such a gap
        self.excused: dict[str, float] = {}
        self._tick_at: tuple[float, float] | None = None
        self._tick_started = 0.0

    @property
    def watches_prometheus(self) -> bool:
        return any(c.source == "prometheus" for c in self.conditions)

    def arm(self, threads: bool = True) -> None:
        """Start guarding (when the first fault is about to be injected). Without
        ``threads`` nothing watches by itself: a test drives ``tick`` with its own clock."""
        self.started_at = time.time()
        self.prometheus_ok_at = self.started_at
        self._tick_at = (self.started_at, time.monotonic())
        self._tick_started = self._tick_at[1]
        self._armed = True
        if not threads:
            return
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
            self.tick(time.time(), time.monotonic())

    def tick(self, now: float, mono: float) -> None:
        """One look at everything the 0.1 s loop watches, at wall time ``now``."""
        if self._tick_at is not None:
            wall_gap, mono_gap = now - self._tick_at[0], mono - self._tick_at[1]
            if max(wall_gap, mono_gap) > OWN_GAP or wall_gap < -OWN_GAP:
                self._own_gap(now, wall_gap, mono_gap)
        self._tick_at = (now, mono)
        for i, cond in enumerate(self.conditions):
            if cond.sli == "elapsed":  # by the monotonic clock: a clock step is no time spent
                self._judge(i, cond, mono - self._tick_started, now)
        self._watch_load(now)
        self._watch_prometheus(now)

    def _own_gap(self, now: float, wall_gap: float, mono_gap: float) -> None:
        self.pauses.append((now, wall_gap, mono_gap))
        stepped = mono_gap <= OWN_GAP  # only the wall clock moved: no time passed
        if stepped:
            what = (f"the wall clock was stepped by {wall_gap - mono_gap:+.1f}s (the monotonic clock moved "
                    f"{mono_gap:.1f}s: a paused machine whose clock was set right on resume, or a clock change)")
        else:
            what = (f"the harness itself did not run for {mono_gap:.1f}s (the machine paused, "
                    "or the harness starved of CPU)")
        # Each source is excused one gap per silence: its bound counts again from now if
        # it was heard from since it was last excused. A machine paused once, or again and
        # again with the sources answering in between, loses nothing; a harness starved
        # tick after tick with a source gone silent does not push its bound away for ever
        # (that would keep the fault in, blind). A clock step takes no time: always excused.
        excused = []
        for source, seen in (("load", self.load.last_record_at if self.load else None),
                             ("prometheus", self.prometheus_ok_at if self.watches_prometheus else None)):
            before = self.excused.get(source)
            if stepped or before is None or (seen is not None and seen > before):
                self.excused[source] = now
                excused.append(source)
        self.resumed_at = now
        if excused:
            bounds = {"load": self.bounds.load, "prometheus": self.bounds.prometheus}
            note = (f"guard: {what}; the bounds count again from now for "
                    + ", ".join(f"{s} ({format_duration(bounds[s])})" for s in excused))
        else:
            note = f"guard: {what}; no source answered since the last such gap: its bound is not restarted"
        if self.on_note:
            self.on_note(note)

    def _watch_prometheus(self, now: float) -> None:
        """Judged here, every 0.1 s, not where a query returns: a frozen Prometheus
        holds each query for its whole time-out, and the bound must not stretch with it."""
        if not self.watches_prometheus:
            return
        since = self._since("prometheus", self.prometheus_ok_at or self.started_at or now, now)
        if now - since > self.bounds.prometheus:
            why = self.prometheus_error or "queries still waiting for an answer"
            self._blind("prometheus", f"prometheus: no answer for {format_duration(now - since)} "
                                      f"(bound {format_duration(self.bounds.prometheus)}): {why}")

    def _since(self, source: str, seen_at: float, now: float) -> float:
        """When a source was last heard of, for its bound: not before its bound was last
        restarted, and a time more than ``OWN_GAP`` after ``now`` (stamped before the clock
        stepped back) is that restart. A time just after ``now`` is a record that came in
        while this tick ran (``now`` is read at the tick's start; records arrive on another
        thread): it is the freshest news, not a clock step. Taking it for one restarted the
        bound at the last pause's time and tripped "no record for 21.9s" in CI."""
        excused = self.excused.get(source)
        if excused is None:
            return seen_at
        return excused if seen_at > now + OWN_GAP else max(seen_at, excused)

    def _watch_load(self, now: float) -> None:
        if self.load is None:
            return
        if not self.load.alive:
            self._blind("load generator", f"load generator: its process exited ({self.load.exit_text()}); "
                                          "the users' view is gone")
            return
        excused = self.excused.get("load")
        resumed = excused is not None and now - excused <= self.bounds.load
        silent = None if resumed else self.load.silent_worker(now, self.bounds.load)
        if silent:
            self._blind("load generator", f"load generator: {silent} (a load machine lost mid-run; bound "
                                          f"{format_duration(self.bounds.load)}): the users' view is partial")
            return
        last = self._since("load", self.load.last_record_at or self.started_at or now, now)
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

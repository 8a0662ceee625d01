"""Client-side SLIs: what the load generator's users saw, interval by interval.

The load generator streams one record per ~0.1 s (see harness.load.child); this keeps
them and answers "what were availability, error ratio, p99... between t0 and t1".
Latency percentiles come from merged log-bucket histograms (5 % wide buckets; a
percentile is reported as its bucket's upper bound, so it never flatters).
"""
from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field

from harness.load.records import bucket_upper_ms


@dataclass
class WindowStats:
    t0: float
    t1: float
    requests: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    hist: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    generator_records: int = 0  # records left out: the load generator itself had stalled

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def availability(self) -> float | None:
        return None if self.requests == 0 else 1.0 - self.failed / self.requests

    @property
    def error_ratio(self) -> float | None:
        return None if self.requests == 0 else self.failed / self.requests

    @property
    def timeout_ratio(self) -> float | None:
        return None if self.requests == 0 else self.failures.get("timeout", 0) / self.requests

    @property
    def throughput(self) -> float | None:
        span = self.t1 - self.t0
        return None if span <= 0 else self.requests / span

    def quantile(self, q: float) -> float | None:
        """Latency quantile in seconds."""
        total = sum(self.hist.values())
        if not total:
            return None
        rank = q * total
        seen = 0
        for idx in sorted(self.hist):
            seen += self.hist[idx]
            if seen >= rank:
                return bucket_upper_ms(idx) / 1000.0
        return bucket_upper_ms(max(self.hist)) / 1000.0

    def sli(self, name: str) -> float | None:
        """Value of a named SLI: availability, error_ratio, timeout_ratio,
        latency_p50/p90/p95/p99, throughput, requests, failures."""
        if name.startswith("latency_p"):
            return self.quantile(float(name[len("latency_p"):]) / 100.0)
        if name == "requests":
            return float(self.requests)
        if name == "failures":
            return float(self.failed)
        return getattr(self, name)




#: a gap this long between two records of a 0.1 s stream means the generator itself
#: stalled (frozen, starved of CPU): what it measured then is its own delay, not the system's
STALL_GAP = 0.5
#: after a stall, requests that were in flight during it finish with the stall in their
#: latency: the records this long after the stall are the generator's too
STALL_SETTLE = 1.0


class ClientSeries:
    """Thread-safe store of interval records, ordered by time.

    Records from a moment when the load generator itself stalled (a gap in its stream,
    its own loop running late, or Locust's CPU warning) are kept but marked
    ``generator: true`` and left out of every window: a frozen generator's stall is
    never judged as the system's latency."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._t: list[float] = []
        self._recs: list[dict] = []
        self._settle_until = 0.0
        #: (from, to) of every stretch the generator stalled, for reports and verdicts
        self.stalls: list[tuple[float, float]] = []

    def add(self, rec: dict) -> None:
        with self._lock:
            t = rec["t"]
            prev = self._t[-1] if self._t else None
            gap = (t - prev) if prev is not None else 0.0
            lag = float(rec.get("lag") or 0.0)
            if gap > STALL_GAP or lag > STALL_GAP or rec.get("starved"):
                self.stalls.append((t - max(gap, lag), t))
                self._settle_until = t + STALL_SETTLE
                rec["generator"] = True
            elif t <= self._settle_until:
                rec["generator"] = True
            if prev is not None and t < prev:
                # the wall clock was stepped back: keep the store ordered for bisect
                i = bisect.bisect_right(self._t, t)
                self._t.insert(i, t)
                self._recs.insert(i, rec)
                return
            self._t.append(t)
            self._recs.append(rec)

    def __len__(self) -> int:
        return len(self._t)

    @property
    def last_t(self) -> float | None:
        with self._lock:
            return self._t[-1] if self._t else None

    def window(self, t0: float, t1: float) -> WindowStats:
        """Stats of the intervals that ended in (t0, t1]."""
        with self._lock:
            lo = bisect.bisect_right(self._t, t0)
            hi = bisect.bisect_right(self._t, t1)
            recs = self._recs[lo:hi]
        w = WindowStats(t0, t1)
        for r in recs:
            if r.get("generator"):
                w.generator_records += 1
                continue
            w.requests += r["n"]
            for k, v in r["fail"].items():
                w.failures[k] = w.failures.get(k, 0) + v
            for k, v in r["hist"].items():
                w.hist[int(k)] = w.hist.get(int(k), 0) + v
            for k, v in r.get("errors", {}).items():
                w.errors[k] = w.errors.get(k, 0) + v
        return w

    def per_second(self, t0: float, t1: float) -> list[dict]:
        """One row per second for charts: t, rps, availability, p50/p95/p99 (ms), users."""
        rows = []
        t = float(int(t0))
        while t < t1:
            w = self.window(t, t + 1.0)
            with self._lock:
                lo = bisect.bisect_right(self._t, t)
                hi = bisect.bisect_right(self._t, t + 1.0)
                users = self._recs[hi - 1].get("users") if hi > lo else None
            rows.append({
                "t": t + 1.0,
                "rps": w.requests,
                "errors": w.failed,
                "timeouts": w.failures.get("timeout", 0),
                "availability": w.availability,
                "p50_ms": _ms(w.quantile(0.5)),
                "p95_ms": _ms(w.quantile(0.95)),
                "p99_ms": _ms(w.quantile(0.99)),
                "users": users,
            })
            t += 1.0
        return rows


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 1)

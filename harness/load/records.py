"""The interval records the load child streams: bucketing and failure kinds.

Kept free of Locust/gevent so that the harness (and its tests) can use it without
importing Locust in-process (see harness.load.child for why that matters).
"""
from __future__ import annotations

import math

BUCKET_BASE = 1.05  # latency bucket i holds (1.05**(i-1), 1.05**i] ms; bucket 0 is <= 1 ms


def bucket(ms: float) -> int:
    return 0 if ms <= 1.0 else int(math.ceil(math.log(ms) / math.log(BUCKET_BASE)))


def bucket_upper_ms(index: int) -> float:
    return 1.0 if index <= 0 else BUCKET_BASE**index


def classify(exception, response) -> str:
    """timeout / http5xx / http4xx / connection / other: timeouts are their own SLI
    (seed 002: stop when the timeout rate exceeds 5 %)."""
    name = type(exception).__name__.lower() + " " + str(exception).lower()
    if "timeout" in name or "timed out" in name:
        return "timeout"
    status = getattr(response, "status_code", None) or 0
    if 500 <= status < 600:
        return "http5xx"
    if 400 <= status < 500:
        return "http4xx"
    if status == 0:
        return "connection"
    return "other"

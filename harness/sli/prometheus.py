"""Server-side SLIs from Prometheus (through prometheus-api-client)."""
from __future__ import annotations

import logging
import math

from prometheus_api_client import PrometheusConnect

from harness.quantities import format_duration

log = logging.getLogger(__name__)


def promql_window(seconds: float) -> str:
    return f"{max(1, int(round(seconds)))}s"


class Prometheus:
    def __init__(self, url: str):
        self.url = url
        self.client = PrometheusConnect(url=url, disable_ssl=True)

    def ready(self) -> bool:
        try:
            return bool(self.client.check_prometheus_connection())
        except Exception:  # noqa: BLE001
            return False

    def value(self, query: str, window: float | None = None, at: float | None = None) -> float | None:
        """One number from an instant query (``$window`` replaced), or None if no data."""
        if window is not None:
            query = query.replace("$window", promql_window(window))
        params = {"time": at} if at else None
        try:
            result = self.client.custom_query(query, params=params)
        except Exception as exc:  # noqa: BLE001 - a failed query is "no data", logged
            log.warning("prometheus query failed: %s: %s", query, exc)
            return None
        if not result:
            return None
        try:
            v = float(result[0]["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            return None
        return None if math.isnan(v) else v

    def range(self, query: str, start: float, end: float, step: float = 1.0) -> list[tuple[float, float]]:
        """(t, value) samples of a range query, for charts."""
        import datetime as dt

        try:
            result = self.client.custom_query_range(
                query,
                start_time=dt.datetime.fromtimestamp(start),
                end_time=dt.datetime.fromtimestamp(end),
                step=format_duration(step).replace(".0s", "s"),
            )
        except Exception as exc:  # noqa: BLE001
            log.warning("prometheus range query failed: %s: %s", query, exc)
            return []
        if not result:
            return []
        out = []
        for t, v in result[0]["values"]:
            try:
                fv = float(v)
            except ValueError:
                continue
            if not math.isnan(fv):
                out.append((float(t), fv))
        return out

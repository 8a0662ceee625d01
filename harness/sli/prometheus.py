"""Server-side SLIs from Prometheus (through prometheus-api-client).

Two ways to ask, on purpose:

* :meth:`Prometheus.read` is for decisions (abort conditions, SLO verdicts, checks):
  it raises :class:`SourceUnavailable` when Prometheus cannot answer, so the caller
  can fail closed ("could not verify", "guard blind") instead of mistaking an outage
  for "no data".
* :meth:`Prometheus.value` / :meth:`range` are for charts and timelines, where a
  missing sample is only a gap: they return None / [] on failure and log it.

Every request has a time-out: a frozen Prometheus accepts connections and never
answers, and a request without one would hang the guard with it.
"""
from __future__ import annotations

import logging
import math

from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

from harness.errors import SourceUnavailable
from harness.quantities import format_duration
from harness.sli import vocabulary

log = logging.getLogger(__name__)

#: seconds one query may take before Prometheus counts as not answering
QUERY_TIMEOUT = 2.0


def promql_window(seconds: float) -> str:
    return f"{max(1, int(round(seconds)))}s"


class Prometheus:
    def __init__(self, url: str, selector: str = "", timeout: float = QUERY_TIMEOUT):
        self.url = url
        #: label matchers the target puts on request counters (see sli.vocabulary)
        self.selector = selector
        self.timeout = timeout
        # No retries with back-off inside the client: the guard and the checks decide
        # how long a silent Prometheus is tolerated, and need each failure at once.
        self.client = PrometheusConnect(url=url, disable_ssl=True, timeout=timeout, retry=Retry(total=0))

    def ready(self) -> bool:
        try:
            return bool(self.client.check_prometheus_connection())
        except Exception:  # noqa: BLE001 - "not ready" is the answer
            return False

    def sli_query(self, sli: str) -> str:
        """The PromQL of a vocabulary SLI on this target (``$window`` left in)."""
        return vocabulary.promql(sli, "$window", self.selector)

    def read(self, query: str, window: float | None = None, at: float | None = None) -> float | None:
        """One number from an instant query (``$window`` replaced); None when the query
        answered with no data. Raises :class:`SourceUnavailable` when Prometheus could
        not answer (refused, timed out, error status)."""
        if window is not None:
            query = query.replace("$window", promql_window(window))
        params = {"time": at} if at else None
        try:
            result = self.client.custom_query(query, params=params)
        except Exception as exc:  # noqa: BLE001 - any failure to answer is "unavailable"
            raise SourceUnavailable(f"Prometheus at {self.url} did not answer: {type(exc).__name__}: "
                                    f"{str(exc)[:200]}") from None
        if not result:
            return None
        try:
            v = float(result[0]["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            return None
        return None if math.isnan(v) else v

    def value(self, query: str, window: float | None = None, at: float | None = None) -> float | None:
        """Like :meth:`read`, but a failure is logged and returned as None (charts only)."""
        try:
            return self.read(query, window, at)
        except SourceUnavailable as exc:
            log.warning("prometheus query failed: %s: %s", query, exc)
            return None

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
        except Exception as exc:  # noqa: BLE001 - a chart with a gap, never a verdict
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

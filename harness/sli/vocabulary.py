"""The one SLI vocabulary: names, units, and their PromQL, defined once.

Every part of the harness that speaks of an SLI uses this module: the experiment
loader (``slo:``, ``server-slo:``, ``abort-when:``), the lab's recording rules, the
operations plan (its SLOs, rules and budgets) and the report. Names are written with
underscores (``latency_p95``); the plan's historical spelling with a dash
(``latency-p95``) is accepted by :func:`canonical`.

PromQL forms are SPEC.md §4's aggregated ones. ``selector`` is the label matcher a
target puts on the request counter to leave out what users never call (the lab's
health and metrics endpoints are ``route="other"``); a seed's system has none, so the
default is empty and the query reads exactly as SPEC.md §4 writes it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SliDef:
    name: str
    unit: str  # "ratio" | "seconds" | "number" | "per_second"
    summary: str
    client: bool = True  # the load generator measures it
    #: PromQL with ``{sel}`` (label matchers, may be empty), ``{sel_5xx}`` (matchers with
    #: the 5xx status), ``{sel_ok}`` (without 5xx) and ``{w}`` (range); None: not observable
    #: from Prometheus (the server never sees a client's time-out).
    promql: str | None = None
    #: name of the recording rule per window, e.g. sli:availability:ratio_rate30s
    record: str | None = None
    #: higher is better (availability) or lower is better (latency, errors)
    higher_is_better: bool = False


def _quantile(q: str) -> str:
    return f"histogram_quantile({q}, sum(rate(http_request_duration_seconds_bucket{{sel}}[{{w}}])) by (le))"


_TOTAL = "sum(rate(http_requests_total{sel}[{w}]))"

SLIS: dict[str, SliDef] = {
    d.name: d
    for d in (
        SliDef("availability", "ratio", "share of requests not failed (5xx, errors, time-outs)",
               promql="sum(rate(http_requests_total{sel_ok}[{w}])) / " + _TOTAL,
               record="sli:availability:ratio_rate{w}", higher_is_better=True),
        SliDef("error_ratio", "ratio", "share of requests failed",
               promql="sum(rate(http_requests_total{sel_5xx}[{w}])) / " + _TOTAL,
               record="sli:error:ratio_rate{w}"),
        SliDef("timeout_ratio", "ratio", "share of requests the client gave up on (time-out)"),
        SliDef("latency_p50", "seconds", "median latency", promql=_quantile("0.50")),
        SliDef("latency_p90", "seconds", "90th percentile latency", promql=_quantile("0.90")),
        SliDef("latency_p95", "seconds", "95th percentile latency", promql=_quantile("0.95"),
               record="sli:latency_p95:seconds_rate{w}"),
        SliDef("latency_p99", "seconds", "99th percentile latency", promql=_quantile("0.99"),
               record="sli:latency_p99:seconds_rate{w}"),
        SliDef("throughput", "per_second", "requests per second", promql=_TOTAL, higher_is_better=True),
        SliDef("requests", "number", "requests in the window",
               promql="sum(increase(http_requests_total{sel}[{w}]))", higher_is_better=True),
        SliDef("failures", "number", "failed requests in the window",
               promql="sum(increase(http_requests_total{sel_5xx}[{w}]))"),
    )
}

CLIENT_SLIS: tuple[str, ...] = tuple(n for n, d in SLIS.items() if d.client)
SERVER_SLIS: tuple[str, ...] = tuple(n for n, d in SLIS.items() if d.promql)
#: windows the lab (and `harness plan rules`) record every SLI at
RECORD_WINDOWS = ("5m", "30s")


def canonical(name: str) -> str:
    """``latency-p95`` -> ``latency_p95``; ``error-rate``/``error`` -> ``error_ratio``."""
    n = str(name).strip().replace("-", "_")
    return {"error_rate": "error_ratio", "error": "error_ratio", "errors": "error_ratio"}.get(n, n)


def _matchers(selector: str, extra: str) -> str:
    parts = [p for p in (selector.strip().strip("{}").strip(), extra) if p]
    return "{" + ",".join(parts) + "}" if parts else ""


def promql(sli: str, window: str = "$window", selector: str = "") -> str:
    """The PromQL of ``sli`` over ``window`` (``"30s"``, ``"5m"`` or ``"$window"`` for the
    evaluator to fill in). Raises KeyError for an SLI Prometheus cannot observe."""
    d = SLIS[canonical(sli)]
    if d.promql is None:
        raise KeyError(f"{d.name} cannot be observed from Prometheus")
    return d.promql.format(
        sel=_matchers(selector, ""), sel_5xx=_matchers(selector, 'status=~"5.."'),
        sel_ok=_matchers(selector, 'status!~"5.."'), w=window,
    )


def recording_rules(selector: str = "", windows: tuple[str, ...] = RECORD_WINDOWS) -> list[dict[str, str]]:
    """``record:``/``expr:`` pairs for every SLI that has a recording-rule name."""
    return [
        {"record": d.record.format(w=w), "expr": promql(d.name, w, selector)}
        for w in windows for d in SLIS.values() if d.record
    ]


def recorded(sli: str, window: str = "30s") -> str | None:
    """Name of the recording rule of ``sli`` at ``window`` (None if it has none)."""
    d = SLIS.get(canonical(sli))
    return d.record.format(w=window) if d and d.record else None


def error_budget(objective_ratio: float, good: float, total: float) -> dict[str, float | None]:
    """The one error-budget function: given an availability-like objective (0.999) and
    counts of good and total events (requests, or minutes), how much budget the period
    allows, how much was burnt and what share of it.

    ``allowed`` = total x (1 - objective); ``burnt`` = total - good;
    ``share`` = burnt / allowed (1.0 = the whole budget; None when nothing was allowed).
    """
    allowed = max(0.0, total * (1.0 - objective_ratio))
    burnt = max(0.0, total - good)
    return {"allowed": allowed, "burnt": burnt, "share": (burnt / allowed) if allowed > 0 else None}


def monthly_budget_minutes(objective_ratio: float, days: float = 30.0) -> float:
    """SPEC.md §4: 43,200 min x (1 - SLO) for 30 days (21.6 min at 99.95 %)."""
    return days * 24 * 60 * (1.0 - objective_ratio)


# -- ratio SLOs and synthetic data (operations plans: Sloth-style SLOs, promtool tests) ------
REQUESTS_METRIC = "http_requests_total"
DURATION_METRIC = "http_request_duration_seconds"
QUANTILES = {"latency_p50": 0.50, "latency_p90": 0.90, "latency_p95": 0.95, "latency_p99": 0.99}


def _le(threshold: float) -> str:
    """Matcher for the bucket at ``threshold`` whichever way the client library spells it
    (Go: ``le="2"``, Python: ``le="2.0"``)."""
    t = f"{threshold:g}"
    alts = [t] if "." in t or "e" in t else [t, t + ".0"]
    return 'le=~"' + "|".join(a.replace(".", "\\\\.") for a in alts) + '"'


def bad_ratio(sli: str, window: str = "$window", selector: str = "", threshold: float | None = None) -> str:
    """PromQL of the share of *bad* events of a ratio SLO on ``sli``: failed requests
    for ``availability``/``error_ratio``; requests slower than ``threshold`` for a
    latency SLI ("p95 <= 500 ms" is "at least 95 % of requests take <= 500 ms")."""
    name = canonical(sli)
    if name in ("availability", "error_ratio"):
        return promql("error_ratio", window, selector)
    if name in QUANTILES:
        if threshold is None:
            raise ValueError(f"a ratio SLO on {name} needs the latency threshold")
        sel_le = _matchers(selector, _le(threshold))
        sel = _matchers(selector, "")
        return (f"(1 - (sum(rate({DURATION_METRIC}_bucket{sel_le}[{window}])) / "
                f"sum(rate({DURATION_METRIC}_count{sel}[{window}]))))")
    raise KeyError(f"{name} is not a ratio SLI (use availability, error_ratio or latency_pNN with a threshold)")


def synthetic_series(sli: str, value: float, selector: str = "", per_second: float = 100.0,
                     threshold: float | None = None) -> list[tuple[str, float]]:
    """Counter series (selector, increase per second) under which ``sli`` reads ``value``:
    the input of a ``promtool test rules`` case. For ``bad_ratio`` of a latency SLO pass
    ``threshold``: ``value`` is then the share of requests slower than it."""
    name = canonical(sli)
    sel = selector.strip().strip("{}").strip()
    join = (lambda extra: "{" + ",".join(p for p in (sel, extra) if p) + "}")
    if name in ("availability", "error_ratio"):
        bad = (1.0 - value) if name == "availability" else value
        return [(REQUESTS_METRIC + join('status="500"'), per_second * bad),
                (REQUESTS_METRIC + join('status="200"'), per_second * (1.0 - bad))]
    if name in QUANTILES:
        if threshold is not None:  # value = share slower than threshold
            le = f"{threshold:g}"
            return [(f"{DURATION_METRIC}_bucket" + join(f'le="{le}"'), per_second * (1.0 - value)),
                    (f"{DURATION_METRIC}_bucket" + join('le="+Inf"'), per_second),
                    (f"{DURATION_METRIC}_count" + join(""), per_second),
                    (REQUESTS_METRIC + join('status="200"'), per_second)]
        # every observation in one bucket (0, value/q]: histogram_quantile(q) reads value
        upper = value / QUANTILES[name]
        return [(f"{DURATION_METRIC}_bucket" + join(f'le="{upper:g}"'), per_second),
                (f"{DURATION_METRIC}_bucket" + join('le="+Inf"'), per_second),
                (f"{DURATION_METRIC}_count" + join(""), per_second),
                (REQUESTS_METRIC + join('status="200"'), per_second)]
    if name == "throughput":
        return [(REQUESTS_METRIC + join('status="200"'), value)]
    raise KeyError(f"no synthetic series for {name}")

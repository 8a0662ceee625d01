"""SLOs in Sloth's ``prometheus/v1`` form: their recording rules and multi-window,
multi-burn-rate alerts (the Google SRE workbook's, as Sloth generates them).

Recording rules follow Sloth's names (``slo:sli_error:ratio_rate<window>`` with the
labels ``sloth_id``, ``sloth_service``, ``sloth_slo``), so dashboards written for
Sloth read them. The SLI PromQL comes from :mod:`harness.sli.vocabulary` for plugin
SLIs (``harness/availability``, ``harness/latency_p95``...), or from the plan for
Sloth's ``events`` and ``raw`` SLIs.
"""
from __future__ import annotations

from typing import Any

from harness.plan.model import SLO, AlertRule, Indicator, Num, Source, _prom_duration
from harness.sli import vocabulary

#: (alert kind, ((long window, short window, burn-rate factor), ...)) for a 30-day SLO.
BURN_WINDOWS = {
    "page": (("1h", "5m", 14.4), ("6h", "30m", 6.0)),
    "ticket": (("1d", "2h", 3.0), ("3d", "6h", 1.0)),
}
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
BURN_SOURCE = Source("plan", "burn rates 14.4x over 1h/5m and 6x over 6h/30m (page), 3x over 1d/2h and 1x "
                             "over 3d/6h (ticket): the Google SRE workbook's, as Sloth generates them; "
                             "no seed gives burn-rate alerts")
FOR_SOURCE = Source("plan", "burn-rate alerts fire at once (as Sloth's): the short window guards against flapping")


def record_name(window: str) -> str:
    return f"slo:sli_error:ratio_rate{window}"


def sloth_labels(slo: SLO) -> dict[str, str]:
    return {"sloth_id": slo.id, "sloth_service": slo.service, "sloth_slo": slo.name}


def error_query(slo: SLO, window: str) -> str:
    if slo.sli_kind == "plugin":
        return vocabulary.bad_ratio(slo.plugin_id, window, slo.selector,
                                    slo.threshold.value if slo.threshold else None)
    if slo.sli_kind == "events":
        err = slo.error_query.replace("{{.window}}", window)
        tot = slo.total_query.replace("{{.window}}", window)
        return f"({err}) / ({tot})"
    return slo.error_ratio_query.replace("{{.window}}", window)


def recording_rules(slo: SLO) -> list[dict[str, Any]]:
    labels = sloth_labels(slo)
    rules = [{"record": record_name(w), "expr": error_query(slo, w), "labels": {**labels, "sloth_window": w}}
             for w in WINDOWS]
    rules.append({"record": "slo:objective:ratio", "expr": f"vector({slo.objective:.6g})", "labels": labels})
    rules.append({"record": "slo:error_budget:ratio", "expr": f"vector({1 - slo.objective:.6g})", "labels": labels})
    return rules


def _burn_expr(slo: SLO, windows: tuple[tuple[str, str, float], ...]) -> str:
    budget = 1.0 - slo.objective
    sel = f'{{sloth_id="{slo.id}"}}'
    parts = []
    for long_w, short_w, factor in windows:
        parts.append(
            f"(max({record_name(short_w)}{sel} > ({factor:g} * {budget:.6g})) without (sloth_window)"
            f" and max({record_name(long_w)}{sel} > ({factor:g} * {budget:.6g})) without (sloth_window))"
        )
    return "\n  or\n".join(parts)


def burn_alerts(slo: SLO, path: str) -> list[AlertRule]:
    out = []
    for kind in ("page", "ticket"):
        labels = slo.page if kind == "page" else slo.ticket
        if labels is None:
            continue
        windows = BURN_WINDOWS[kind]
        severity = labels["severity"]
        extra = {k: v for k, v in labels.items() if k != "severity"}
        name = f"{slo.alert_name}{'Page' if kind == 'page' else 'Ticket'}"
        fastest = windows[0][2]
        out.append(AlertRule(
            name=name, expr=_burn_expr(slo, windows), for_=Num(0.0, "0s", FOR_SOURCE, slo.line),
            severity=severity,
            summary=(f"{slo.service} {slo.name}: error budget burning {fastest:g}x or faster ({kind})"
                     if kind == "page" else f"{slo.service} {slo.name}: error budget burning {windows[-1][2]:g}x "
                                            f"or faster over days ({kind})"),
            source=slo.source, threshold=None,
            labels={**extra, "sloth_id": slo.id, "sloth_service": slo.service, "sloth_slo": slo.name,
                    "sloth_severity": kind},
            line=slo.line, op=">", indicator=Indicator("burn", sli=slo.sli), service=slo.service,
            slo=slo.id, burn=windows, file=path,
        ))
    return out


def describe_windows(windows: tuple) -> str:
    return " or ".join(f"{f:g}x over {lw} and {sw}" for lw, sw, f in windows)


__all__ = ["BURN_WINDOWS", "WINDOWS", "burn_alerts", "describe_windows", "error_query", "recording_rules",
           "record_name", "_prom_duration"]

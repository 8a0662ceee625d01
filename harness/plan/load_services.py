"""The services and their SLOs (Sloth ``prometheus/v1`` specs) of a plan."""
from __future__ import annotations

import re
from typing import Any

from ruamel.yaml.comments import CommentedMap

from harness.plan.model import (
    SLO,
    Fact,
    Indicator,
    Num,
    Source,
)
from harness.sli import vocabulary

from harness.plan.reader import (
    AGGREGATES,
    _Bad,
    Reader,
    _seq,
    _objective,
    _labels,
)


def _services(r: Reader, doc: CommentedMap, levels: tuple[str, ...], plan_selector: str):
    """``services:``, each a Sloth ``prometheus/v1`` spec plus the plan's extensions
    (``source``, ``selector``, ``description``, ``targets``; per SLO ``sla``, ``source``,
    ``budget-unit``)."""
    slos: list[SLO] = []
    services: list[dict[str, Any]] = []
    seen = set()
    for i, svc in enumerate(_seq(r, doc, "services")):
        try:
            if not isinstance(svc, CommentedMap):
                r.fail(_seq(r, doc, "services"), i, "a service must be a mapping (a Sloth prometheus/v1 spec)")
            r.known_keys(svc, {"version", "service", "labels", "slos", "source", "selector", "description",
                               "targets"}, "a service (Sloth prometheus/v1 spec plus source/selector/targets)")
            if svc.get("version") != "prometheus/v1":
                r.problem(svc, "version" if "version" in svc else None,
                          "a service is a Sloth spec: 'version: prometheus/v1'")
            name = r.text(svc, "service")
            ssrc = r.source(svc, inherited=None) if "source" in svc else None
            selector = str(svc.get("selector", plan_selector) or "")
            targets = []
            for j, t in enumerate(_seq(r, svc, "targets")):
                try:
                    r.known_keys(t, {"name", "objective", "sla", "source", "note"}, "a target")
                    tsrc = r.source(t, inherited=ssrc)
                    targets.append(Fact(r.text(t, "name"), f"SLO {t.get('objective', '-')} / SLA {t.get('sla', '-')}"
                                        + (f" ({t['note']})" if t.get("note") else ""), tsrc, None, r.pos(t)[0]))
                except _Bad:
                    continue
            services.append({"name": name, "description": str(svc.get("description", "")), "source": ssrc,
                             "selector": selector, "targets": targets, "labels": _labels(r, svc, "labels"),
                             "line": r.pos(svc)[0]})
            for j, item in enumerate(_seq(r, svc, "slos")):
                try:
                    slos.append(_slo(r, item, name, selector, ssrc, levels, seen))
                except _Bad:
                    continue
        except _Bad:
            continue
    return slos, services


def _slo(r: Reader, item: Any, service: str, selector: str, ssrc: Source | None, levels, seen: set) -> SLO:
    if not isinstance(item, CommentedMap):
        r.fail(item, None, "an SLO must be a mapping")
    r.known_keys(item, {"name", "objective", "description", "sli", "alerting", "labels", "sla", "source",
                        "budget-unit"}, "an SLO (Sloth: name, objective, description, sli, alerting, labels)")
    src = r.source(item, inherited=ssrc)
    name = r.text(item, "name")
    if not re.match(r"^[A-Za-z0-9_-]+$", name):
        r.fail(item, "name", "SLO names are letters, digits, - and _ (Sloth)")
    if (service, name) in seen:
        r.fail(item, "name", f"SLO '{name}' of service '{service}' is defined twice")
    seen.add((service, name))
    obj = _objective(r, item, src)
    sla = None
    if "sla" in item:
        raw = item["sla"]
        sraw = raw["value"] if isinstance(raw, CommentedMap) else raw
        ssrc2 = r.source(raw, inherited=src) if isinstance(raw, CommentedMap) else src
        try:
            v = float(str(sraw).rstrip("%")) / 100.0
        except ValueError:
            r.fail(item, "sla", f"sla must be a percentage like 99.5, not {sraw!r}")
        sla = Num(v, str(sraw), ssrc2, r.pos(item, "sla")[0])
    sli = r.mapping(item, "sli")
    kinds = [k for k in ("plugin", "events", "raw") if k in sli]
    if len(kinds) != 1:
        r.fail(item, "sli", "sli needs exactly one of plugin, events, raw (Sloth)")
    kind = kinds[0]
    plugin_id, threshold, eq, tq, rq = "", None, "", "", ""
    if kind == "plugin":
        pl = r.mapping(sli, "plugin")
        r.known_keys(pl, {"id", "options"}, "sli.plugin")
        pid = r.text(pl, "id")
        plugin_id = vocabulary.canonical(pid.split("/", 1)[1] if pid.startswith("harness/") else pid)
        if plugin_id not in vocabulary.SLIS or plugin_id not in ("availability", "error_ratio",
                                                                 *vocabulary.QUANTILES):
            r.fail(pl, "id", f"unknown SLI plugin {pid!r}: the harness provides harness/availability, "
                             f"harness/error_ratio and harness/latency_p50/p90/p95/p99")
        opts = pl.get("options") or CommentedMap()
        if plugin_id in vocabulary.QUANTILES:
            threshold = r.num(opts, "threshold", "duration", src) if isinstance(opts, CommentedMap) and \
                "threshold" in opts else None
            if threshold is None:
                r.fail(pl, "options" if "options" in pl else None,
                       f"{pid} needs options.threshold (the latency the requests must stay under)")
            q = vocabulary.QUANTILES[plugin_id]
            if abs(obj.value - q) > 1e-9:
                r.problem(item, "objective", f"a {pid} SLO counts requests under the threshold: its objective "
                                             f"is {q * 100:g} (the quantile), not {obj.text}")
    elif kind == "events":
        ev = r.mapping(sli, "events")
        eq, tq = r.text(ev, "error_query"), r.text(ev, "total_query")
        for k in ("error_query", "total_query"):
            if "{{.window}}" not in ev[k]:
                r.problem(ev, k, f"{k} must use {{{{.window}}}} for the range (Sloth)")
    else:
        rw = r.mapping(sli, "raw")
        rq = r.text(rw, "error_ratio_query")
    unit = str(item.get("budget-unit", "requests"))
    if unit not in ("requests", "minutes"):
        r.fail(item, "budget-unit", "budget-unit must be 'requests' or 'minutes'")
    page = ticket = None
    alert_name = ""
    al = item.get("alerting")
    if al is not None:
        if not isinstance(al, CommentedMap):
            r.fail(item, "alerting", "alerting must be a mapping (Sloth: name, labels, page_alert, ticket_alert)")
        r.known_keys(al, {"name", "labels", "annotations", "page_alert", "ticket_alert"}, "alerting")
        alert_name = r.text(al, "name")
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", alert_name):
            r.fail(al, "name", f"alert name {alert_name!r} must be a Prometheus name")
        common = _labels(r, al, "labels")
        for key in ("page_alert", "ticket_alert"):
            pa = al.get(key)
            if pa is None:
                continue
            if not isinstance(pa, CommentedMap):
                r.fail(al, key, f"{key} must be a mapping {{labels: {{severity: ...}}}} or {{disable: true}}")
            if pa.get("disable"):
                continue
            labels = {**common, **_labels(r, pa, "labels")}
            if "severity" not in labels:
                r.fail(pa, None, f"{key}.labels.severity is missing (one of {', '.join(levels)})")
            if labels["severity"] not in levels:
                lab = pa.get("labels") if isinstance(pa.get("labels"), CommentedMap) else pa
                r.fail(lab, "severity" if "severity" in lab else None,
                       f"unknown severity {labels['severity']!r}: this plan's severities are {', '.join(levels)}")
            if key == "page_alert":
                page = labels
            else:
                ticket = labels
    return SLO(service, name, obj.value, obj, kind, plugin_id, threshold, eq, tq, rq, selector,
               str(item.get("description", "")), sla, unit, page, ticket, alert_name, src, r.pos(item)[0])


def _indicator(r: Reader, item: CommentedMap, selector: str) -> Indicator:
    ind = r.mapping(item, "indicator")
    kinds = [k for k in ("sli", "gauge", "rate", "ratio", "expr") if k in ind]
    if len(kinds) != 1:
        r.fail(item, "indicator", "indicator needs exactly one of sli, gauge, rate, ratio, expr")
    kind = kinds[0]
    r.known_keys(ind, {"sli", "gauge", "rate", "ratio", "expr", "window", "per", "aggregate", "absent-is",
                       "selector", "test"}, "an indicator")
    agg = str(ind.get("aggregate", ""))
    if agg and agg not in AGGREGATES:
        r.fail(ind, "aggregate", f"aggregate must be one of {', '.join(AGGREGATES)}")
    absent = ind.get("absent-is")
    window = str(ind.get("window", ""))
    for k in ("window", "per"):
        if k in ind and not re.match(r"^\d+[smhd]$", str(ind[k])):
            r.fail(ind, k, f"{k} must be a Prometheus duration like 5m or 1h")
    if kind == "sli":
        sli = vocabulary.canonical(str(ind["sli"]))
        if sli not in vocabulary.SLIS or vocabulary.SLIS[sli].promql is None:
            r.fail(ind, "sli", f"unknown SLI {ind['sli']!r} (Prometheus sees: {', '.join(vocabulary.SERVER_SLIS)})")
        if not window:
            r.fail(ind, None, "an sli indicator needs its 'window' (e.g. 5m)")
        return Indicator("sli", selector=str(ind.get("selector", selector) or ""), sli=sli, window=window)
    if kind == "gauge":
        return Indicator("gauge", selector=str(ind["gauge"]), aggregate=agg,
                         absent_is=float(absent) if absent is not None else None)
    if kind == "rate":
        if "per" not in ind:
            r.fail(ind, None, "a rate indicator needs 'per' (1m for '> 100/min', 1h for '> 10/hour')")
        return Indicator("rate", selector=str(ind["rate"]), per=str(ind["per"]))
    if kind == "ratio":
        rt = ind["ratio"]
        if not isinstance(rt, CommentedMap) or "bad" not in rt or "total" not in rt:
            r.fail(ind, "ratio", "ratio needs {bad: <counter selector>, total: <counter selector>}")
        if not window:
            r.fail(ind, None, "a ratio indicator needs its 'window' (e.g. 5m)")
        return Indicator("ratio", bad=str(rt["bad"]), total=str(rt["total"]), window=window)
    test = ind.get("test")
    series: tuple = ()
    fire = quiet = None
    if test is not None:
        if not isinstance(test, CommentedMap):
            r.fail(ind, "test", "test must be {series: [{series, kind}], fire: N, quiet: N}")
        r.known_keys(test, {"series", "fire", "quiet"}, "an indicator test (series: [{series, kind, value}])")
        out = []
        for j, s_ in enumerate(_seq(r, test, "series")):
            if not isinstance(s_, CommentedMap) or "series" not in s_:
                r.fail(test["series"], j, "each test series is {series: <selector>, kind: gauge|counter}")
            k = str(s_.get("kind", "gauge"))
            if k not in ("gauge", "counter"):
                r.fail(s_, "kind", "kind must be gauge or counter")
            fixed = s_.get("value")
            out.append((str(s_["series"]), k, None if fixed is None else float(fixed)))
        series = tuple(out)
        try:
            fire = float(test["fire"]) if "fire" in test else None
            quiet = float(test["quiet"]) if "quiet" in test else None
        except (TypeError, ValueError):
            r.fail(test, None, "fire and quiet are the indicator's values (numbers)")
    return Indicator("expr", expr=str(ind["expr"]), test_series=series, test_fire=fire, test_quiet=quiet)


def indicator_promql(ind: Indicator, plan_selector: str = "") -> str:
    if ind.kind == "sli":
        rec = vocabulary.recorded(ind.sli, ind.window)
        if rec and ind.window in vocabulary.RECORD_WINDOWS and ind.selector == plan_selector:
            return rec
        return f"({vocabulary.promql(ind.sli, ind.window, ind.selector)})"
    if ind.kind == "gauge":
        q = f"{ind.aggregate}({ind.selector})" if ind.aggregate else ind.selector
        if ind.absent_is is not None:
            q = f"({q} or vector({ind.absent_is:g}))"
        return q
    if ind.kind == "rate":
        return f"sum(increase({ind.selector}[{ind.per}]))"
    if ind.kind == "ratio":
        return f"(sum(rate({ind.bad}[{ind.window}])) / sum(rate({ind.total}[{ind.window}])))"
    return ind.expr

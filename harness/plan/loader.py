"""Load an operations-plan YAML file into a :class:`~harness.plan.model.Plan`.

Errors name the file, line and column (ruamel.yaml keeps them) and all problems of a
file are reported at once. Format: see plans/lab.yaml, which documents every key.

A number is written either plainly (``min-replicas: 3``), taking the ``source:`` of
the item it belongs to, or as ``{value: 3, source: {...}}`` with its own source.
A source is ``{seed: "002", section: "§5", example: true, note: "..."}``;
``seed: lab`` marks a value the lab chose (no seed gives it).
"""
from __future__ import annotations

import re
from datetime import time as dtime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from harness.errors import InvalidInput, Problem
from harness.plan.model import (
    DAYS, DEFAULT_SEVERITIES, SLO, AlertRule, BackupPolicy, BackupTier, ChaosPolicy, Fact, IncidentLevel,
    Incidents, Indicator, Inhibition, Num, Period, Plan, Receiver, Route, Routing, ScalingPolicy, Source,
)
from harness.quantities import parse_duration
from harness.sli import vocabulary

SEEDS = ("000", "001", "002", "003", "004", "lab", "plan")
OPS = (">", ">=", "<", "<=", "==", "!=")
AGGREGATES = ("sum", "max", "min", "avg", "count")


class _Bad(Exception):
    pass


class Reader:
    def __init__(self, path: str):
        self.path = path
        self.problems: list[Problem] = []

    # -- positions and problems --------------------------------------------------
    @staticmethod
    def pos(node: Any, key: Any = None) -> tuple[int, int]:
        try:
            if key is None:
                return node.lc.line + 1, node.lc.col + 1
            if isinstance(node, CommentedSeq):
                ln, col = node.lc.item(key)
            else:
                ln, col = node.lc.key(key)
            return ln + 1, col + 1
        except Exception:  # noqa: BLE001 - best effort
            return 0, 0

    def problem(self, node: Any, key: Any, message: str) -> None:
        line, col = self.pos(node, key)
        self.problems.append(Problem(self.path, line, col, message))

    def fail(self, node: Any, key: Any, message: str):
        self.problem(node, key, message)
        raise _Bad(message)

    # -- typed getters -------------------------------------------------------------
    def mapping(self, node: Any, key: str, required: bool = True) -> CommentedMap | None:
        if key not in node:
            if required:
                self.fail(node, None, f"'{key}' is missing")
            return None
        v = node[key]
        if not isinstance(v, CommentedMap):
            self.fail(node, key, f"'{key}' must be a mapping")
        return v

    def text(self, node: Any, key: str, required: bool = True, default: str = "") -> str:
        if key not in node:
            if required:
                self.fail(node, None, f"'{key}' is missing")
            return default
        v = node[key]
        if not isinstance(v, str) or not v.strip():
            self.fail(node, key, f"'{key}' must be a non-empty string")
        return v

    def known_keys(self, node: CommentedMap, allowed: set[str], where: str) -> None:
        for k in node:
            if k not in allowed:
                self.problem(node, k, f"unknown key '{k}' in {where} (allowed: {', '.join(sorted(allowed))})")

    def source(self, node: Any, key: str = "source", inherited: Source | None = None) -> Source:
        if key not in node:
            if inherited is not None:
                return inherited
            self.fail(node, None, "every number needs a 'source: {seed, section, example}' "
                                  "(seed 000-004, 'lab' for a value chosen for the lab, 'plan' for one "
                                  "the plan chose because no seed gives it)")
        s = node[key]
        if not isinstance(s, CommentedMap):
            self.fail(node, key, "'source' must be a mapping {seed, section, example}")
        seed = str(s.get("seed", "")).strip()
        if seed.isdigit():
            seed = seed.zfill(3)
        if seed not in SEEDS:
            self.fail(s, "seed" if "seed" in s else None, f"source seed must be one of {', '.join(SEEDS)}, not {seed!r}")
        section = str(s.get("section", "")).strip()
        if seed not in ("lab", "plan") and not section:
            self.fail(s, None, "a seed source needs its 'section'")
        example = s.get("example", False)
        if not isinstance(example, bool):
            self.fail(s, "example", "'example' must be true or false")
        self.known_keys(s, {"seed", "section", "example", "note"}, "source")
        return Source(seed, section, example, str(s.get("note", "")).strip())

    def num(self, node: Any, key: str, kind: str, inherited: Source | None, required: bool = True) -> Num | None:
        """A number: kind "duration" (seconds), "ratio" (99.9% -> 0.999), "int", "float"."""
        if key not in node:
            if required:
                self.fail(node, None, f"'{key}' is missing")
            return None
        raw = node[key]
        src = inherited
        holder, hkey = node, key
        if isinstance(raw, CommentedMap):
            if "value" not in raw:
                self.fail(raw, None, f"'{key}' as a mapping needs 'value' (and 'source')")
            src = self.source(raw, inherited=inherited)
            holder, hkey = raw, "value"
            raw = raw["value"]
        if src is None:
            self.fail(node, key, f"'{key}' has no source: give the item a 'source' or write "
                                 f"'{key}: {{value: ..., source: {{seed, section, example}}}}'")
        line = self.pos(holder, hkey)[0]
        try:
            value = _convert(raw, kind)
        except ValueError as exc:
            self.fail(holder, hkey, f"'{key}': {exc}")
        return Num(value, str(raw), src, line)


def _convert(raw: Any, kind: str) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"expected a {kind}, got {raw!r}")
    if kind == "duration":
        if isinstance(raw, str) and raw.strip().endswith("d"):
            return float(raw.strip()[:-1]) * 86400.0
        if isinstance(raw, str) and raw.strip().endswith("w"):
            return float(raw.strip()[:-1]) * 7 * 86400.0
        return parse_duration(raw)
    if kind == "ratio":
        if isinstance(raw, str) and raw.strip().endswith("%"):
            return float(raw.strip()[:-1]) / 100.0
        v = float(raw)
        if not 0 <= v <= 1:
            raise ValueError(f"a ratio is between 0 and 1 (or write a percentage like 70%), got {raw!r}")
        return v
    if kind == "int":
        if isinstance(raw, int):
            return raw
        raise ValueError(f"expected a whole number, got {raw!r}")
    if isinstance(raw, str) and raw.strip().endswith("%"):
        return float(raw.strip()[:-1]) / 100.0
    if isinstance(raw, str) and re.match(r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)\s*$", raw):
        return parse_duration(raw)
    return float(raw)


def _clock(r: Reader, node: Any, key: str) -> dtime:
    v = str(node.get(key, ""))
    m = re.match(r"^(\d{1,2}):(\d{2})$", v)
    if not m or int(m.group(1)) > 24 or int(m.group(2)) > 59:
        r.fail(node, key if key in node else None, f"'{key}' must be a time HH:MM, got {v!r}")
    h, mnt = int(m.group(1)), int(m.group(2))
    return dtime(23, 59, 59) if h == 24 else dtime(h, mnt)


def _days(r: Reader, node: Any, key: str) -> tuple[str, ...]:
    v = node.get(key, [])
    if isinstance(v, str):
        if v == "weekdays":
            return DAYS[:5]
        if v in ("every day", "daily"):
            return ()
        v = [v]
    out = []
    for i, d in enumerate(v):
        d = str(d).lower()[:3]
        if d not in DAYS:
            r.fail(node[key], i, f"unknown day {v[i]!r} (mon..sun or 'weekdays')")
        out.append(d)
    return tuple(out)


# -- sections -------------------------------------------------------------------------
def _seq(r: Reader, doc: Any, key: str) -> CommentedSeq:
    seq = doc.get(key)
    if seq is None:
        return CommentedSeq()
    if not isinstance(seq, CommentedSeq):
        r.fail(doc, key, f"'{key}' must be a list")
    return seq


def _severities(r: Reader, doc: CommentedMap) -> tuple[tuple[str, ...], Source | None]:
    node = doc.get("severities")
    if node is None:
        return DEFAULT_SEVERITIES, None
    if not isinstance(node, CommentedMap) or not isinstance(node.get("levels"), CommentedSeq):
        r.fail(doc, "severities", "'severities' must be {levels: [P1, P2, ...], source: {...}}")
    r.known_keys(node, {"levels", "source"}, "severities")
    levels = tuple(str(x) for x in node["levels"])
    for i, lv in enumerate(levels):
        if not re.match(r"^[A-Za-z0-9_-]+$", lv):
            r.problem(node["levels"], i, f"severity {lv!r} must be letters, digits, - or _")
    if len(set(levels)) != len(levels):
        r.problem(node, "levels", "a severity is listed twice")
    return levels, r.source(node)


def _severity(r: Reader, node: Any, key: str, levels: tuple[str, ...]) -> str:
    v = node.get(key)
    if not isinstance(v, str) or v not in levels:
        r.fail(node, key if key in node else None,
               f"unknown severity {v!r}: this plan's severities are {', '.join(levels)}")
    return v


def _objective(r: Reader, node: Any, src: Source) -> Num:
    """Sloth's objective: a percentage (99.9) or "99.9%". Anything else is not a ratio."""
    raw = node.get("objective")
    line = r.pos(node, "objective")[0] if "objective" in node else r.pos(node)[0]
    value = None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = float(raw) / 100.0
    elif isinstance(raw, str) and re.match(r"^\s*\d+(\.\d+)?\s*%\s*$", raw):
        value = float(raw.strip()[:-1]) / 100.0
    if value is None or not 0.0 < value < 1.0:
        r.fail(node, "objective" if "objective" in node else None,
               f"objective must be a ratio: a percentage between 0 and 100 as Sloth writes it (99.9 or "
               f"'99.9%'), not {raw!r}. A latency SLO 'p95 <= 500ms' is objective 95 with "
               f"sli.plugin.options.threshold 500ms; a 100 % target has no error budget: list it under the "
               f"service's 'targets'")
    return Num(value, str(raw), src, line)


def _labels(r: Reader, node: Any, key: str) -> dict[str, str]:
    v = node.get(key) or {}
    if not isinstance(v, dict):
        r.fail(node, key, f"'{key}' must be a mapping of label names to values")
    return {str(k): str(x) for k, x in v.items()}


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


def _alerts(r: Reader, doc: CommentedMap, levels: tuple[str, ...], selector: str,
            services: dict[str, str]) -> list[AlertRule]:
    out = []
    names = set()
    for i, item in enumerate(_seq(r, doc, "alerts")):
        try:
            if not isinstance(item, CommentedMap):
                r.fail(doc["alerts"], i, "an alert must be a mapping")
            r.known_keys(item, {"name", "expr", "indicator", "op", "for", "severity", "summary", "source",
                                "threshold", "labels", "service"}, "an alert")
            src = r.source(item)
            name = r.text(item, "name")
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                r.fail(item, "name", f"alert name {name!r} must be a Prometheus name (letters, digits, _)")
            if name in names:
                r.fail(item, "name", f"alert '{name}' is defined twice")
            names.add(name)
            severity = _severity(r, item, "severity", levels)
            if "for" not in item:
                r.fail(item, None, f"alert '{name}' has no 'for': write how long the condition must hold "
                                   f"(0s for at once), with its source")
            for_ = r.num(item, "for", "duration", src)
            threshold = r.num(item, "threshold", "float", src, required=False)
            service = str(item.get("service", ""))
            if service and service not in services and service != "all":
                r.problem(item, "service", f"unknown service {service!r} (services: {', '.join(services) or '-'})")
            op = str(item.get("op", ">"))
            if op not in OPS:
                r.fail(item, "op", f"op must be one of {' '.join(OPS)}")
            indicator = None
            if "indicator" in item:
                if "expr" in item:
                    r.fail(item, "expr", "an alert has either 'indicator' (with op and threshold) or 'expr'")
                sel = services.get(service, selector)
                indicator = _indicator(r, item, sel)
                if indicator.kind == "expr":
                    expr = indicator.expr
                    op = ""
                    if threshold is not None:
                        r.problem(item, "threshold", "an expr indicator carries its own condition: no threshold")
                else:
                    if threshold is None:
                        r.fail(item, None, f"alert '{name}' has an indicator but no 'threshold'")
                    expr = f"{indicator_promql(indicator, selector)} {op} {threshold.value:g}"
            else:
                expr = r.text(item, "expr")
                if "{threshold}" in expr:
                    if threshold is None:
                        r.fail(item, "expr", "expr uses {threshold} but the alert has no 'threshold'")
                    expr = expr.replace("{threshold}", f"{threshold.value:g}")
                elif re.search(r"(?<![\w\[:.])\d+(\.\d+)?(?![\w\]])", _strip_ranges(expr)) and threshold is None:
                    r.problem(item, "expr", "numbers in expr need a source: write the threshold as "
                                            "'threshold:' and use {threshold} in expr")
                m = re.search(r"(>=|<=|==|!=|>|<)\s*[\d.]+\s*$", expr)
                op = m.group(1) if m else ""
            labels = _labels(r, item, "labels")
            if service and service != "all":
                labels.setdefault("service", service)
            out.append(AlertRule(name, expr, for_, severity, r.text(item, "summary"), src, threshold, labels,
                                 r.pos(item)[0], op, indicator, service, file=r.path))
        except _Bad:
            continue
    return out

def _strip_ranges(expr: str) -> str:
    """Drop what is not a threshold: range selectors [30s], label matchers {..},
    recording-rule names (sli:latency_p95:...), quantiles in histogram_quantile(0.95, ...),
    and comparisons with 0 or 1 (boolean facts such as up == 0)."""
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"histogram_quantile\(\s*[\d.]+\s*,", "histogram_quantile(", expr)
    expr = re.sub(r"vector\(\s*\d+\s*\)", "", expr)
    expr = re.sub(r"(==|!=|<|>|<=|>=)\s*[01](?![\d.])", "", expr)
    return expr


def _receivers(r: Reader, doc: CommentedMap, levels: tuple[str, ...]) -> list[Receiver]:
    out = []
    for i, item in enumerate(_seq(r, doc, "receivers")):
        try:
            if not isinstance(item, CommentedMap):
                r.fail(doc["receivers"], i, "a receiver must be a mapping")
            r.known_keys(item, {"name", "channels", "severities", "respond-within", "source", "slack", "email",
                                "pagerduty", "webhook", "send-resolved"}, "a receiver")
            src = r.source(item)
            name = r.text(item, "name")
            if not re.match(r"^[A-Za-z0-9_-]+$", name):
                r.fail(item, "name", "receiver names are letters, digits, - and _")
            sev = item.get("severities")
            if sev == "all":
                sevs = levels
            elif isinstance(sev, CommentedSeq):
                sevs = tuple(str(x) for x in sev)
                for j, x in enumerate(sevs):
                    if x not in levels:
                        r.fail(sev, j, f"unknown severity {x!r}: this plan's severities are {', '.join(levels)}")
            else:
                r.fail(item, "severities" if "severities" in item else None,
                       "severities: the list of severities that reach this receiver, or 'all'")
            kinds = [k for k in ("slack", "email", "pagerduty", "webhook") if k in item]
            if len(kinds) > 1:
                r.fail(item, kinds[1], "a receiver is one of slack, email, pagerduty, webhook")
            kind = kinds[0] if kinds else "webhook"
            spec = item.get(kind) if kinds else None
            slack_channel = str(spec.get("channel", "")) if kind == "slack" and isinstance(spec, CommentedMap) else ""
            email_to = str(spec.get("to", "")) if kind == "email" and isinstance(spec, CommentedMap) else ""
            out.append(Receiver(name, tuple(str(c) for c in (item.get("channels") or [])), sevs,
                                r.num(item, "respond-within", "duration", src, required=False), src, kind,
                                slack_channel, email_to, bool(item.get("send-resolved", True)), r.pos(item)[0]))
        except _Bad:
            continue
    return out


def _routing(r: Reader, doc: CommentedMap, levels: tuple[str, ...]) -> Routing | None:
    node = r.mapping(doc, "routes", required=False)
    receivers = _receivers(r, doc, levels) if "receivers" in doc else []
    if node is None:
        if receivers:
            r.problem(doc, "receivers", "receivers without 'routes' (group-wait, group-interval, repeat-interval)")
        return None
    r.known_keys(node, {"group-wait", "group-interval", "repeat-interval", "group-by", "by-severity", "source"},
                 "routes")
    src = r.source(node, inherited=None) if "source" in node else None
    if "by-severity" in node:
        # The one-to-one short form (the lab's): severity -> receiver of the same name.
        if receivers:
            r.fail(node, "by-severity", "write either 'receivers' (with their severities) or routes.by-severity")
        by = r.mapping(node, "by-severity")
        for sev in by:
            try:
                if sev not in levels:
                    r.fail(by, sev, f"unknown severity {sev!r}: this plan's severities are {', '.join(levels)}")
                item = by[sev]
                if not isinstance(item, CommentedMap):
                    r.fail(by, sev, "a route must be a mapping {receiver, channels, source}")
                r.known_keys(item, {"receiver", "channels", "respond-within", "source"}, f"route '{sev}'")
                rsrc = r.source(item, inherited=src)
                receiver = r.text(item, "receiver")
                if not re.match(r"^[A-Za-z0-9_-]+$", receiver):
                    r.fail(item, "receiver", "receiver names are letters, digits, - and _")
                chans = tuple(str(c) for c in (item.get("channels") or []))
                receivers.append(Receiver(receiver, chans, (sev,), r.num(item, "respond-within", "duration", rsrc,
                                                                         required=False), rsrc, "webhook",
                                          line=r.pos(by, sev)[0]))
            except _Bad:
                continue
        missing = [s for s in levels if not any(s in x.severities for x in receivers)]
        if missing:
            r.problem(by, None, f"routes.by-severity has no route for {', '.join(missing)}")
    else:
        if not receivers:
            r.problem(node, None, "routes need 'receivers' (at the top level of the plan) or 'by-severity'")
        names = [x.name for x in receivers]
        for x in receivers:
            if names.count(x.name) > 1:
                r.problems.append(Problem(r.path, x.line, 1, f"receiver '{x.name}' is defined twice"))
        missing = [s for s in levels if not any(s in x.severities for x in receivers)]
        if missing and receivers:
            r.problem(doc, "receivers", f"no receiver takes severity {', '.join(missing)}")
    routes = {}
    for sev in levels:
        first = next((x for x in receivers if sev in x.severities), None)
        if first:
            routes[sev] = Route(sev, first.name, first.channels, first.respond_within, first.source)
    gb = node.get("group-by")
    group_by = tuple(str(x) for x in gb) if isinstance(gb, CommentedSeq) else ("alertname",)
    return Routing(
        r.num(node, "group-wait", "duration", src),
        r.num(node, "group-interval", "duration", src),
        r.num(node, "repeat-interval", "duration", src),
        routes, tuple(receivers), group_by, "default", src,
    )


def _inhibitions(r: Reader, doc: CommentedMap, receivers_known: bool) -> list[Inhibition]:
    out = []
    for i, item in enumerate(_seq(r, doc, "inhibitions")):
        try:
            if not isinstance(item, CommentedMap):
                r.fail(doc["inhibitions"], i, "an inhibition must be a mapping")
            r.known_keys(item, {"name", "source-match", "target-match", "equal", "source", "note"}, "an inhibition")
            src = r.source(item)
            sm, tm = _labels(r, item, "source-match"), _labels(r, item, "target-match")
            if not sm or not tm:
                r.fail(item, None, "an inhibition needs source-match and target-match (label: value)")
            out.append(Inhibition(r.text(item, "name"), sm, tm, tuple(str(x) for x in (item.get("equal") or [])),
                                  src, r.pos(item)[0]))
        except _Bad:
            continue
    return out


def _maintenance(r: Reader, doc: CommentedMap) -> tuple[list[Period], str]:
    node = doc.get("maintenance-windows")
    if node is None:
        return [], ""
    if not isinstance(node, CommentedMap):
        r.fail(doc, "maintenance-windows", "maintenance-windows must be {windows: [...], note, source}")
    r.known_keys(node, {"windows", "note", "source"}, "maintenance-windows")
    src = r.source(node, inherited=None) if "source" in node else None
    out = []
    for i, item in enumerate(_seq(r, node, "windows")):
        try:
            if not isinstance(item, CommentedMap):
                r.fail(node["windows"], i, "a window must be a mapping {name, days, from, to}")
            p = _period(r, item, src)
            if not re.match(r"^[A-Za-z0-9_-]+$", p.name):
                r.fail(item, "name", "a maintenance window's name is letters, digits, - and _")
            out.append(p)
        except _Bad:
            continue
    return out, str(node.get("note", ""))


def _facts(r: Reader, node: Any, key: str, inherited: Source | None) -> tuple[Fact, ...]:
    out = []
    for i, item in enumerate(_seq(r, node, key)):
        try:
            if not isinstance(item, CommentedMap):
                r.fail(node[key], i, "each entry is {what, value, source}")
            r.known_keys(item, {"what", "value", "source", "kind"}, f"an entry of {key}")
            src = r.source(item, inherited=inherited)
            what = r.text(item, "what")
            raw = item.get("value", "")
            num = None
            kind = item.get("kind")
            if kind:
                if kind not in ("duration", "ratio", "int", "float"):
                    r.fail(item, "kind", "kind is duration, ratio, int or float")
                num = r.num(item, "value", str(kind), src)
            out.append(Fact(what, str(raw), src, num, r.pos(item)[0]))
        except _Bad:
            continue
    return tuple(out)


def _scaling(r: Reader, doc: CommentedMap) -> ScalingPolicy | None:
    node = r.mapping(doc, "scaling", required=False)
    if node is None:
        return None
    r.known_keys(node, {"min-replicas", "max-replicas", "cpu-target", "memory-target", "scale-in-below",
                        "stabilisation-window", "scale-out-within", "source", "target", "replicas-today",
                        "triggers", "capacity"}, "scaling")
    src = r.source(node) if "source" in node else None

    def opt(key, kind):
        return r.num(node, key, kind, src, required=False)

    p = ScalingPolicy(opt("min-replicas", "int"), opt("max-replicas", "int"), opt("cpu-target", "ratio"),
                      opt("scale-in-below", "ratio"), opt("stabilisation-window", "duration"),
                      opt("scale-out-within", "duration"), opt("memory-target", "ratio"),
                      str(node.get("target", "")), opt("replicas-today", "int"),
                      _facts(r, node, "triggers", src), _facts(r, node, "capacity", src), src)
    if p.min_replicas and p.max_replicas and p.min_replicas.value > p.max_replicas.value:
        r.problem(node, "min-replicas", "min-replicas is above max-replicas")
    if p.min_replicas and p.min_replicas.value < 1:
        r.problem(node, "min-replicas", "min-replicas must be at least 1")
    if p.scale_in_below and p.cpu_target and p.scale_in_below.value >= p.cpu_target.value:
        r.problem(node, "scale-in-below", "scale-in-below must be under cpu-target (or replicas flap)")
    return p


def _backup(r: Reader, doc: CommentedMap) -> BackupPolicy | None:
    node = r.mapping(doc, "backup", required=False)
    if node is None:
        return None
    r.known_keys(node, {"full", "incremental", "retention-full", "rto", "rpo", "replication",
                        "restore-drills", "source", "tiers", "restore-tests", "dr-steps", "dr-source", "rules"},
                 "backup")
    src = r.source(node) if "source" in node else None
    full = r.mapping(node, "full", required=False)
    fsrc, full_at = None, ""
    if full is not None:
        fsrc = r.source(full, inherited=src)
        full_at = _clock(r, full, "daily-at").strftime("%H:%M") if "daily-at" in full else ""
    incr = r.mapping(node, "incremental", required=False)
    every = r.num(incr, "every", "duration", r.source(incr, inherited=src)) if incr is not None else None
    repl = node.get("replication")
    if isinstance(repl, CommentedMap):
        rsrc = r.source(repl, inherited=src)
        repl_mode = str(repl.get("value", ""))
    else:
        rsrc, repl_mode = src, str(repl or "")
    if repl_mode not in ("", "synchronous", "asynchronous"):
        r.problem(node, "replication", "replication must be 'synchronous' or 'asynchronous'")
    tiers = []
    for i, t in enumerate(_seq(r, node, "tiers")):
        try:
            if not isinstance(t, CommentedMap):
                r.fail(node["tiers"], i, "a tier is {target, method, schedule, retention, rpo, rto, source}")
            r.known_keys(t, {"target", "method", "schedule", "retention", "rpo", "rto", "source"}, "a backup tier")
            tsrc = r.source(t, inherited=src)
            tiers.append(BackupTier(r.text(t, "target"), str(t.get("method", "")), str(t.get("schedule", "")),
                                    str(t.get("retention", "")), r.num(t, "rpo", "duration", tsrc, required=False),
                                    r.num(t, "rto", "duration", tsrc, required=False), tsrc, r.pos(t)[0]))
        except _Bad:
            continue
    dr_src = r.source(node, "dr-source", inherited=src) if "dr-source" in node else src
    return BackupPolicy(full_at, fsrc, every, r.num(node, "retention-full", "int", src, required=False),
                        r.num(node, "rto", "duration", src, required=False),
                        r.num(node, "rpo", "duration", src, required=False),
                        repl_mode, rsrc, str(node.get("restore-drills", "")), tuple(tiers),
                        _facts(r, node, "restore-tests", src), tuple(str(x) for x in (node.get("dr-steps") or [])),
                        dr_src, _facts(r, node, "rules", src))


def _incidents(r: Reader, doc: CommentedMap) -> Incidents | None:
    node = r.mapping(doc, "incidents", required=False)
    if node is None:
        return None
    r.known_keys(node, {"levels", "escalation", "source", "facts"}, "incidents")
    src = r.source(node) if "source" in node else None
    levels = []
    for i, item in enumerate(_seq(r, node, "levels")):
        try:
            r.known_keys(item, {"level", "name", "definition", "respond", "resolve", "source"}, "an incident level")
            lsrc = r.source(item, inherited=src)
            nums = {}
            for k in ("respond", "resolve"):
                v = item.get(k)
                nums[k] = r.num(item, k, "duration", lsrc) if v is not None and re.match(
                    r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d|w)\s*$", str(v)) else None
            levels.append(IncidentLevel(r.text(item, "level"), str(item.get("name", "")),
                                        str(item.get("definition", "")), nums["respond"], nums["resolve"],
                                        str(item.get("respond", "")), str(item.get("resolve", "")), lsrc))
        except _Bad:
            continue
    esc: dict[str, tuple] = {}
    esrc = None
    e = node.get("escalation")
    if e is not None:
        if not isinstance(e, CommentedMap):
            r.fail(node, "escalation", "escalation is {source, chains: {P1: [[after, who], ...]}}")
        esrc = r.source(e, inherited=src)
        chains = e.get("chains") or {}
        for lv, steps in chains.items():
            esc[str(lv)] = tuple((str(s[0]), str(s[1])) for s in steps)
    return Incidents(tuple(levels), esc, esrc, _facts(r, node, "facts", src))

def _period(r: Reader, node: Any, inherited: Source | None) -> Period:
    r.known_keys(node, {"name", "days", "from", "to", "dates", "source"}, "a period")
    src = r.source(node, inherited=inherited)
    dates = tuple(str(d) for d in (node.get("dates") or []))
    for i, d in enumerate(dates):
        if not re.match(r"^\d{4}-\d{2}-\d{2}$", d):
            r.fail(node["dates"], i, f"dates are YYYY-MM-DD, not {d!r}")
    return Period(str(node.get("name", "business hours")), _days(r, node, "days"), _clock(r, node, "from"),
                  _clock(r, node, "to"), dates, src)


def _chaos(r: Reader, doc: CommentedMap) -> ChaosPolicy | None:
    node = r.mapping(doc, "chaos", required=False)
    if node is None:
        return None
    r.known_keys(node, {"business-hours", "forbidden", "outside-business-hours", "one-at-a-time", "source"}, "chaos")
    src = r.source(node) if "source" in node else None
    bh = _period(r, r.mapping(node, "business-hours"), src)
    forbidden = []
    for i, item in enumerate(node.get("forbidden") or []):
        try:
            if not isinstance(item, CommentedMap):
                r.fail(node["forbidden"], i, "a forbidden period must be a mapping {name, days, from, to}")
            forbidden.append(_period(r, item, src))
        except _Bad:
            continue
    one = node.get("one-at-a-time", True)
    return ChaosPolicy(bh, tuple(forbidden), tuple(str(k) for k in (node.get("outside-business-hours") or [])),
                       bool(one), src or bh.source)


TOP_KEYS = {"plan", "title", "sources", "notes", "derived-from", "severities", "selector", "services", "alerts",
            "receivers", "routes", "inhibitions", "maintenance-windows", "scaling", "backup", "chaos",
            "incidents", "policy"}


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan; raise :class:`InvalidInput` listing every problem."""
    from harness.plan.slo import burn_alerts

    path = str(path)
    r = Reader(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read the plan: {exc.strerror}") from None
    try:
        doc = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise InvalidInput([Problem(path, mark.line + 1 if mark else 0, mark.column + 1 if mark else 0,
                                    f"not valid YAML: {exc.problem}")]) from None
    if not isinstance(doc, CommentedMap):
        raise InvalidInput([Problem(path, 1, 1, "a plan is a YAML mapping (plan:, services:, alerts:, ...)")])
    r.known_keys(doc, TOP_KEYS, "the plan")
    try:
        levels, lsrc = _severities(r, doc)
    except _Bad:
        levels, lsrc = DEFAULT_SEVERITIES, None
    selector = str(doc.get("selector", "") or "")
    try:
        slos, services = _services(r, doc, levels, selector)
    except _Bad:
        slos, services = [], []
    svc_sel = {s["name"]: s["selector"] for s in services}
    sections: dict[str, Any] = {}
    for key, fn in (("alerts", lambda: _alerts(r, doc, levels, selector, svc_sel)),
                    ("routes", lambda: _routing(r, doc, levels)),
                    ("inhibitions", lambda: _inhibitions(r, doc, True)),
                    ("maintenance", lambda: _maintenance(r, doc)),
                    ("scaling", lambda: _scaling(r, doc)), ("backup", lambda: _backup(r, doc)),
                    ("chaos", lambda: _chaos(r, doc)), ("incidents", lambda: _incidents(r, doc)),
                    ("policy", lambda: _facts(r, doc, "policy", None))):
        try:
            sections[key] = fn()
        except _Bad:
            sections[key] = None
    name = doc.get("plan")
    if not isinstance(name, str) or not name:
        r.problem(doc, None, "'plan' (the plan's name) is missing")
    alerts = list(sections["alerts"] or [])
    names = {a.name for a in alerts}
    for s in slos:
        for a in burn_alerts(s, path):
            if a.name in names:
                r.problems.append(Problem(path, s.line, 1, f"SLO {s.id}: its burn-rate alert {a.name} has the "
                                                            f"name of another alert"))
            names.add(a.name)
            alerts.append(a)
    routing = sections["routes"]
    if routing is not None:
        for a in alerts:
            if not routing.receivers_for(a.severity):
                r.problems.append(Problem(path, a.line, 1,
                                          f"alert '{a.name}' has severity '{a.severity}' but no receiver takes it"))
    maint, maint_note = sections["maintenance"] or ([], "")
    if r.problems:
        raise InvalidInput(sorted(set(r.problems), key=lambda p: (p.line, p.column, p.message)))
    return Plan(
        name=name, path=path, title=str(doc.get("title", "")),
        sources={str(k): str(v) for k, v in (doc.get("sources") or {}).items()},
        slos=slos, alerts=alerts, routing=routing,
        scaling=sections["scaling"], backup=sections["backup"], chaos=sections["chaos"],
        notes=str(doc.get("notes", "")), severities=levels, severities_source=lsrc, selector=selector,
        services=services, inhibitions=sections["inhibitions"] or [], maintenance=maint,
        maintenance_note=maint_note, incidents=sections["incidents"], policy=list(sections["policy"] or []),
        derived_from=str(doc.get("derived-from", "")),
    )

def default_plan_path() -> Path:
    """plans/lab.yaml of this checkout (the package is installed editable)."""
    return Path(__file__).resolve().parents[2] / "plans" / "lab.yaml"

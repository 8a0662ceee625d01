"""The alerts, receivers, routes, inhibitions and maintenance windows of a plan."""
from __future__ import annotations

import re

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from harness.errors import Problem
from harness.plan.model import (
    AlertRule,
    Inhibition,
    Period,
    Receiver,
    Route,
    Routing,
)

from harness.plan.reader import (
    _period,
    OPS,
    _Bad,
    Reader,
    _seq,
    _severity,
    _labels,
)
from harness.plan.load_services import _indicator, indicator_promql


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

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
    DAYS, SEVERITIES, SLI_QUERIES, SLO, AlertRule, BackupPolicy, ChaosPolicy, Num, Period,
    Plan, Route, Routing, ScalingPolicy, Source,
)
from harness.quantities import parse_duration, parse_objective

SEEDS = ("000", "001", "002", "003", "004", "lab")


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
                                  "(seed 000-004, or 'lab' for a value chosen for the lab)")
        s = node[key]
        if not isinstance(s, CommentedMap):
            self.fail(node, key, "'source' must be a mapping {seed, section, example}")
        seed = str(s.get("seed", "")).strip()
        if seed.isdigit():
            seed = seed.zfill(3)
        if seed not in SEEDS:
            self.fail(s, "seed" if "seed" in s else None, f"source seed must be one of {', '.join(SEEDS)}, not {seed!r}")
        section = str(s.get("section", "")).strip()
        if seed != "lab" and not section:
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
def _slos(r: Reader, doc: CommentedMap) -> list[SLO]:
    out = []
    seq = doc.get("slos") or []
    if not isinstance(seq, CommentedSeq):
        r.fail(doc, "slos", "'slos' must be a list")
    for i, item in enumerate(seq):
        try:
            if not isinstance(item, CommentedMap):
                r.fail(seq, i, "an SLO must be a mapping")
            r.known_keys(item, {"name", "sli", "objective", "window", "budget-unit", "source", "service"}, "an SLO")
            src = r.source(item)
            sli = r.text(item, "sli")
            if sli not in SLI_QUERIES:
                r.fail(item, "sli", f"unknown sli '{sli}' (known: {', '.join(SLI_QUERIES)})")
            try:
                obj = parse_objective(item.get("objective"))
            except ValueError as exc:
                r.fail(item, "objective" if "objective" in item else None, f"objective: {exc}")
            onum = Num(obj.value, obj.text, src, r.pos(item, "objective")[0])
            unit = str(item.get("budget-unit", "requests"))
            if unit not in ("requests", "minutes"):
                r.fail(item, "budget-unit", "budget-unit must be 'requests' or 'minutes'")
            out.append(SLO(r.text(item, "name"), sli, obj, onum, r.num(item, "window", "duration", src, required=False),
                           unit, src, r.pos(item)[0]))
        except _Bad:
            continue
    return out


def _alerts(r: Reader, doc: CommentedMap) -> list[AlertRule]:
    out = []
    seq = doc.get("alerts") or []
    if not isinstance(seq, CommentedSeq):
        r.fail(doc, "alerts", "'alerts' must be a list")
    names = set()
    for i, item in enumerate(seq):
        try:
            if not isinstance(item, CommentedMap):
                r.fail(seq, i, "an alert must be a mapping")
            r.known_keys(item, {"name", "expr", "for", "severity", "summary", "source", "threshold", "labels"}, "an alert")
            src = r.source(item)
            name = r.text(item, "name")
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                r.fail(item, "name", f"alert name {name!r} must be a Prometheus name (letters, digits, _)")
            if name in names:
                r.fail(item, "name", f"alert '{name}' is defined twice")
            names.add(name)
            severity = r.text(item, "severity")
            if severity not in SEVERITIES:
                r.fail(item, "severity", f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
            threshold = r.num(item, "threshold", "float", src, required=False)
            expr = r.text(item, "expr")
            if "{threshold}" in expr:
                if threshold is None:
                    r.fail(item, "expr", "expr uses {threshold} but the alert has no 'threshold'")
                expr = expr.replace("{threshold}", f"{threshold.value:g}")
            elif re.search(r"(?<![\w\[:.])\d+(\.\d+)?(?![\w\]])", _strip_ranges(expr)) and threshold is None:
                r.problem(item, "expr", "numbers in expr need a source: write the threshold as "
                                        "'threshold:' and use {threshold} in expr")
            labels = item.get("labels") or {}
            out.append(AlertRule(name, expr, r.num(item, "for", "duration", src), severity,
                                 r.text(item, "summary"), src, threshold,
                                 {str(k): str(v) for k, v in labels.items()}, r.pos(item)[0]))
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


def _routing(r: Reader, doc: CommentedMap) -> Routing | None:
    node = r.mapping(doc, "routes", required=False)
    if node is None:
        return None
    r.known_keys(node, {"group-wait", "group-interval", "repeat-interval", "by-severity", "source"}, "routes")
    src = r.source(node, inherited=None) if "source" in node else None
    routes: dict[str, Route] = {}
    by = r.mapping(node, "by-severity")
    for sev in by:
        try:
            if sev not in SEVERITIES:
                r.fail(by, sev, f"severity must be one of {', '.join(SEVERITIES)}, not {sev!r}")
            item = by[sev]
            if not isinstance(item, CommentedMap):
                r.fail(by, sev, "a route must be a mapping {receiver, channels, source}")
            r.known_keys(item, {"receiver", "channels", "respond-within", "source"}, f"route '{sev}'")
            rsrc = r.source(item, inherited=src)
            receiver = r.text(item, "receiver")
            if not re.match(r"^[A-Za-z0-9_-]+$", receiver):
                r.fail(item, "receiver", "receiver names are letters, digits, - and _")
            chans = tuple(str(c) for c in (item.get("channels") or []))
            routes[sev] = Route(sev, receiver, chans, r.num(item, "respond-within", "duration", rsrc, required=False), rsrc)
        except _Bad:
            continue
    missing = [s for s in SEVERITIES if s not in routes]
    if missing:
        r.problem(by, None, f"routes.by-severity has no route for {', '.join(missing)}")
    return Routing(
        r.num(node, "group-wait", "duration", src),
        r.num(node, "group-interval", "duration", src),
        r.num(node, "repeat-interval", "duration", src),
        routes,
    )


def _scaling(r: Reader, doc: CommentedMap) -> ScalingPolicy | None:
    node = r.mapping(doc, "scaling", required=False)
    if node is None:
        return None
    r.known_keys(node, {"min-replicas", "max-replicas", "cpu-target", "scale-in-below",
                        "stabilisation-window", "scale-out-within", "source"}, "scaling")
    src = r.source(node) if "source" in node else None
    p = ScalingPolicy(
        r.num(node, "min-replicas", "int", src),
        r.num(node, "max-replicas", "int", src),
        r.num(node, "cpu-target", "ratio", src),
        r.num(node, "scale-in-below", "ratio", src),
        r.num(node, "stabilisation-window", "duration", src),
        r.num(node, "scale-out-within", "duration", src, required=False),
    )
    if p.min_replicas.value > p.max_replicas.value:
        r.problem(node, "min-replicas", "min-replicas is above max-replicas")
    if p.min_replicas.value < 1:
        r.problem(node, "min-replicas", "min-replicas must be at least 1")
    if p.scale_in_below.value >= p.cpu_target.value:
        r.problem(node, "scale-in-below", "scale-in-below must be under cpu-target (or replicas flap)")
    return p


def _backup(r: Reader, doc: CommentedMap) -> BackupPolicy | None:
    node = r.mapping(doc, "backup", required=False)
    if node is None:
        return None
    r.known_keys(node, {"full", "incremental", "retention-full", "rto", "rpo", "replication",
                        "restore-drills", "source"}, "backup")
    src = r.source(node) if "source" in node else None
    full = r.mapping(node, "full")
    fsrc = r.source(full, inherited=src)
    full_at = _clock(r, full, "daily-at").strftime("%H:%M")
    incr = r.mapping(node, "incremental", required=False)
    every = r.num(incr, "every", "duration", r.source(incr, inherited=src)) if incr is not None else None
    repl = node.get("replication")
    if isinstance(repl, CommentedMap):
        rsrc = r.source(repl, inherited=src)
        repl_mode = str(repl.get("value", ""))
    else:
        rsrc, repl_mode = src, str(repl or "synchronous")
    if repl_mode not in ("synchronous", "asynchronous"):
        r.problem(node, "replication", "replication must be 'synchronous' or 'asynchronous'")
    return BackupPolicy(full_at, fsrc, every, r.num(node, "retention-full", "int", src),
                        r.num(node, "rto", "duration", src), r.num(node, "rpo", "duration", src),
                        repl_mode, rsrc or Source("lab", "default"), str(node.get("restore-drills", "")))


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


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan; raise :class:`InvalidInput` listing every problem."""
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
        raise InvalidInput([Problem(path, 1, 1, "a plan is a YAML mapping (plan:, slos:, alerts:, ...)")])
    r.known_keys(doc, {"plan", "title", "sources", "slos", "alerts", "routes", "scaling", "backup", "chaos", "notes"},
                 "the plan")
    sections: dict[str, Any] = {}
    for key, fn in (("slos", _slos), ("alerts", _alerts), ("routes", _routing), ("scaling", _scaling),
                    ("backup", _backup), ("chaos", _chaos)):
        try:
            sections[key] = fn(r, doc)
        except _Bad:
            sections[key] = None
    name = doc.get("plan")
    if not isinstance(name, str) or not name:
        r.problem(doc, None, "'plan' (the plan's name) is missing")
    routing = sections["routes"]
    if routing is not None:
        for a in sections["alerts"] or []:
            if a.severity not in routing.routes:
                r.problems.append(Problem(path, a.line, 1, f"alert '{a.name}' has severity '{a.severity}' but no route takes it"))
    if r.problems:
        raise InvalidInput(sorted(r.problems, key=lambda p: (p.line, p.column)))
    return Plan(
        name=name, path=path, title=str(doc.get("title", "")),
        sources={str(k): str(v) for k, v in (doc.get("sources") or {}).items()},
        slos=sections["slos"] or [], alerts=sections["alerts"] or [], routing=routing,
        scaling=sections["scaling"], backup=sections["backup"], chaos=sections["chaos"],
        notes=str(doc.get("notes", "")),
    )


def default_plan_path() -> Path:
    """plans/lab.yaml of this checkout (the package is installed editable)."""
    return Path(__file__).resolve().parents[2] / "plans" / "lab.yaml"

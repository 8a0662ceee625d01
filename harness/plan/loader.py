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
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError

from harness.errors import InvalidInput, Problem
from harness.plan.model import (
    DEFAULT_SEVERITIES,
    BackupPolicy,
    BackupTier,
    ChaosPolicy,
    Fact,
    IncidentLevel,
    Incidents,
    Plan,
    ScalingPolicy,
    Source,
)

from harness.plan.reader import (
    _period,
    _Bad,
    Reader,
    _clock,
    _seq,
    _severities,
)
from harness.plan.load_services import _services
from harness.plan.load_alerts import (
    _alerts,
    _routing,
    _inhibitions,
    _maintenance,
)


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
                        "triggers", "capacity", "mismatch-within"}, "scaling")
    src = r.source(node) if "source" in node else None

    def opt(key, kind):
        return r.num(node, key, kind, src, required=False)

    p = ScalingPolicy(opt("min-replicas", "int"), opt("max-replicas", "int"), opt("cpu-target", "ratio"),
                      opt("scale-in-below", "ratio"), opt("stabilisation-window", "duration"),
                      opt("scale-out-within", "duration"), opt("memory-target", "ratio"),
                      str(node.get("target", "")), opt("replicas-today", "int"),
                      _facts(r, node, "triggers", src), _facts(r, node, "capacity", src), src,
                      mismatch_within=opt("mismatch-within", "duration"))
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



def _chaos(r: Reader, doc: CommentedMap) -> ChaosPolicy | None:
    node = r.mapping(doc, "chaos", required=False)
    if node is None:
        return None
    r.known_keys(node, {"business-hours", "forbidden", "outside-business-hours", "one-at-a-time", "source",
                        "preconditions", "announce"}, "chaos")  # the last two: harness.plan.policy reads them
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

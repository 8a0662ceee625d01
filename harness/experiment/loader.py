"""Load and validate experiment files: every problem with file:line:col, nothing run.

``load_experiment(path)`` returns a typed :class:`Experiment` or raises
:class:`InvalidInput` listing every problem found (not just the first).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema

from harness.catalogue import check_kinds, fault_kinds
from harness.errors import InvalidInput, Problem
from harness.experiment.model import (
    AbortCondition,
    Experiment,
    Expectation,
    Slo,
    SloSet,
    Step,
    Where,
)
from harness.experiment.schema import PAUSE_STEP, check_schema, experiment_schema, fault_step_schema
from harness.experiment.yamlsafe import Positions, load_document, position
from harness.load.generator import LoadSpec
from harness.quantities import parse_objective, parse_seconds
from harness.experiment.model import GuardBounds
from harness.scenario import timing
from harness.sli.vocabulary import CLIENT_SLIS, SERVER_SLIS

HARNESS_KEYS = {"load", "steady-state", "under-fault", "abort-when", "recovery", "expect", "target", "plan"}

#: parameters of the catalogue whose schema is DURATION: parsed to seconds at load, so
#: faults and checks never re-parse text ("300ms" -> 0.3)
def _duration_keys(kind) -> set[str]:
    return {k for k, v in kind.params.items() if isinstance(v, dict) and v.get("format") == "duration"}


class _Collector:
    def __init__(self, file: str, positions: Positions):
        self.file = file
        self.positions = positions
        self.problems: list[Problem] = []

    def where(self, path) -> Where:
        line, col = position(self.positions, path)
        return Where(self.file, line, col)

    def add(self, path, message: str) -> None:
        line, col = position(self.positions, path)
        self.problems.append(Problem(self.file, line, col, message))

    def duration(self, value, path, default: float | None = None) -> float | None:
        if value is None:
            return default
        try:
            return parse_seconds(value)
        except ValueError as exc:
            self.add(path, str(exc))
            return default

    def objective(self, value, path):
        try:
            return parse_objective(value)
        except ValueError as exc:
            self.add(path, str(exc))
            return None

    def schema(self, data, schema, base_path=()) -> bool:
        validator = jsonschema.Draft202012Validator(schema)
        ok = True
        for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
            ok = False
            path = tuple(base_path) + tuple(err.absolute_path)
            message = _humanise(err, path)
            if err.validator == "additionalProperties" and isinstance(err.instance, dict):
                extra = [k for k in err.instance if k not in err.schema.get("properties", {})]
                path = path + (extra[0],) if extra else path
            elif err.validator == "propertyNames":
                path = path + (err.instance,)
            self.add(path, message)
        return ok


def _humanise(err: jsonschema.ValidationError, path) -> str:
    where = ".".join(str(p) for p in path) or "the document"
    if err.validator == "additionalProperties":
        extra = [k for k in err.instance if k not in err.schema.get("properties", {})]
        known = ", ".join(sorted(err.schema.get("properties", {})))
        return f"unknown key{'s' if len(extra) > 1 else ''} {', '.join(repr(k) for k in extra)} in {where} (known: {known})"
    if err.validator == "required":
        return f"{where}: {err.message.replace(' is a required property', '')} is required"
    if err.validator == "propertyNames":
        allowed = err.schema.get("propertyNames", {}).get("enum") or []
        return f"{where}: unknown name {err.instance!r}" + (f" (known: {', '.join(allowed)})" if allowed else "")
    if err.validator == "type":
        return f"{where}: expected {err.validator_value}, got {type(err.instance).__name__} {err.instance!r}"
    if err.validator == "enum":
        return f"{where}: {err.instance!r} is not one of {', '.join(map(repr, err.validator_value))}"
    if err.validator == "not":
        keys = err.validator_value.get("required", [])
        return f"{where}: give only one of {', '.join(keys)}"
    return f"{where}: {err.message}"


def is_harness_document(data: dict[str, Any]) -> bool:
    if HARNESS_KEYS & set(data):
        return True
    return any(isinstance(s, dict) and ("fault" in s or "pause" in s) for s in data.get("method", []) or [])


def load_experiment(path: str | Path) -> Experiment:
    path = Path(path)
    data, positions = load_document(path)
    c = _Collector(str(path), positions)
    FAULTS, CHECKS = fault_kinds(), check_kinds()  # built in and from plugins
    if not isinstance(data, dict):
        raise InvalidInput([Problem(str(path), 1, 1, "an experiment is a mapping (title:, method:, ...)")])
    from harness.plan import judge

    c.schema(judge.schema_view(data), experiment_schema())
    plain = not is_harness_document(data)
    pj = judge.resolve(c, data.get("plan"), path, data.get("target"), judge.needs_plan(data))

    load = None
    if isinstance(data.get("load"), dict) and "locustfile" in data["load"]:
        ld = data["load"]
        load = LoadSpec(
            locustfile=str(ld["locustfile"]),
            users=int(ld.get("users", 20)) if isinstance(ld.get("users", 20), int) else 20,
            spawn_rate=float(ld.get("spawn-rate", ld.get("users", 20))) if isinstance(ld.get("spawn-rate", 1), (int, float)) else 20.0,
            host=ld.get("host"),
            warmup=c.duration(ld.get("warmup"), ("load", "warmup"), 5.0) or 0.0,
            workers=int(ld.get("workers", 0)) if isinstance(ld.get("workers", 0), int) else 0,
            expect_workers=int(ld.get("expect-workers", 0)) if isinstance(ld.get("expect-workers", 0), int) else 0,
            master_bind=str(ld.get("master-bind", "127.0.0.1:0")),
        )
        lf = Path(load.locustfile)
        if not lf.is_absolute() and not lf.exists() and not (path.parent / lf).exists() and not (Path.cwd() / lf).exists():
            c.add(("load", "locustfile"), f"locustfile {load.locustfile!r} not found (relative to {Path.cwd()} or {path.parent})")

    steady = _slo_set(c, data.get("steady-state"), ("steady-state",), default_window=10.0, pj=pj)
    under = _slo_set(c, data.get("under-fault"), ("under-fault",), default_window=steady.window if steady else 10.0,
                     pj=pj)

    method: list[Step] = []
    for i, raw in enumerate(data.get("method") or []):
        if not isinstance(raw, dict):
            continue
        p = ("method", i)
        if "fault" in raw:
            kind = raw["fault"]
            if kind not in FAULTS:
                c.add(p + ("fault",), f"unknown fault {kind!r} (known: {', '.join(sorted(FAULTS))})")
                continue
            if not c.schema(raw, fault_step_schema(FAULTS[kind]), p):
                continue
            params = {k: v for k, v in raw.items() if k not in ("fault", "duration", "concurrent", "label", "at", "when")}
            for key in _duration_keys(FAULTS[kind]) & set(params):
                params[key] = c.duration(params[key], p + (key,), 0.0)
            dur = c.duration(raw.get("duration"), p + ("duration",), 0.0) or 0.0
            at, when = timing.parse_timing(c, raw, p)
            method.append(Step("fault", kind, params, dur, bool(raw.get("concurrent", False)),
                               label=str(raw.get("label", "")), where=c.where(p), at=at, when=when))
        elif "pause" in raw:
            if c.schema(raw, PAUSE_STEP, p):
                at, when = timing.parse_timing(c, raw, p)
                method.append(Step("pause", duration=c.duration(raw["pause"], p + ("pause",), 0.0) or 0.0,
                                   label=str(raw.get("label", "")), where=c.where(p), at=at, when=when))
        elif "revert" in raw:  # scenarios: revert a labelled fault (harness.scenario.timing)
            step = timing.revert_step(c, raw, p, Step)
            if step:
                method.append(step)
        elif "type" in raw:
            method.append(Step("activity", activity=raw, where=c.where(p)))
        else:
            c.add(p, "a method step needs 'fault:', 'pause:', 'revert:' or a Chaos Toolkit 'type:' (action/probe)")
    timing.check_method(c, method, steady, load is not None)

    aborts: list[AbortCondition] = []
    for i, raw in enumerate(data.get("abort-when") or []):
        if isinstance(raw, dict):
            cond = _abort(c, raw, ("abort-when", i))
            if cond:
                aborts.append(cond)

    expects: list[Expectation] = []
    raw_expect = data.get("expect")
    for i, raw in enumerate(["plan"] if judge._is_plan(raw_expect) else (raw_expect or [])):
        if judge._is_plan(raw) and pj is not None:  # expect: plan -> the plan's rules for these faults
            p = ("expect",) if judge._is_plan(raw_expect) else ("expect", i)
            for kind, params in judge.expectations(c, pj, method, p):
                expects.append(Expectation(kind, params, c.where(p), origin=pj.rule_for(kind, params)))
        if isinstance(raw, dict) and len(raw) == 1:
            (kind, params), = raw.items()
            if kind in CHECKS and isinstance(params, dict):
                p = ("expect", i, kind)
                if c.schema(params, check_schema(CHECKS[kind]), p):
                    params = dict(params)
                    for key in _duration_keys(CHECKS[kind]) & set(params):
                        params[key] = c.duration(params[key], p + (key,), 0.0)
                    expects.append(Expectation(kind, params, c.where(p)))

    rec = data.get("recovery") if isinstance(data.get("recovery"), dict) else {}
    recovery_within = c.duration(rec.get("within"), ("recovery", "within"))
    recovery_window = c.duration(rec.get("window"), ("recovery", "window"))

    g = data.get("guard") if isinstance(data.get("guard"), dict) else {}
    guard = GuardBounds(
        load=c.duration(g.get("load-blind-after"), ("guard", "load-blind-after"), GuardBounds.load) or GuardBounds.load,
        prometheus=c.duration(g.get("prometheus-blind-after"), ("guard", "prometheus-blind-after"),
                              GuardBounds.prometheus) or GuardBounds.prometheus,
    )
    if load is None:
        # Fail closed: a condition on the users' view with no users can never trip.
        for cond in aborts:
            if cond.source in ("load", "plan") and cond.sli not in (None, "elapsed"):
                line, col = (cond.where.line, cond.where.column) if cond.where else (0, 0)
                c.problems.append(Problem(str(path), line, col,
                                          f"abort condition '{cond.text}' reads the load generator, but the "
                                          "experiment has no 'load:' section, so it could never trip (add load:, "
                                          "or use source: prometheus)"))

    if not plain:
        if method and not any(s.kind == "fault" for s in method) and not any(s.kind == "activity" for s in method):
            c.add(("method",), "the method injects nothing (add a 'fault:' step)")
        if any(s.kind == "fault" for s in method) and not aborts:
            # SPEC §3: an experiment with no stop condition is forbidden.
            c.add(("method",), "an experiment that injects faults needs at least one abort condition "
                               "('abort-when:'), e.g. {elapsed: '> 5m'} and {error_ratio: '> 20%'}")
        if steady and steady.slos and load is None and any(s.source == "load" for s in steady.slos):
            c.add(("steady-state", "slo"), "client-side SLOs need a 'load:' section (the users' view comes from the load generator)")

    if c.problems:
        raise InvalidInput(sorted(c.problems, key=lambda p: (p.line, p.column)))
    if plain:
        _validate_ctk(path, data)
    return Experiment(
        path=path,
        title=str(data.get("title", "")),
        description=str(data.get("description", "")),
        tags=tuple(data.get("tags") or ()),
        target=data.get("target"),
        plan=data.get("plan"),
        load=load,
        steady_state=steady,
        under_fault=under if data.get("under-fault") else steady,
        method=tuple(method),
        abort=tuple(aborts),
        recovery_within=recovery_within,
        recovery_window=recovery_window,
        expect=tuple(expects),
        guard=guard,
        raw=data,
        plain_ctk=plain,
        plan_judging=pj,
    )


def _slo_set(c: _Collector, raw, path, default_window: float, pj=None) -> SloSet | None:
    if not isinstance(raw, dict):
        return None
    window = c.duration(raw.get("window"), path + ("window",), default_window) or default_window
    slos: list[Slo] = []
    if raw.get("slo") == "plan":  # the plan's objectives for the service (harness.plan.judge)
        from harness.plan import judge

        for sli, text, rule in (judge.slos(c, pj, path + ("slo",)) if pj else []):
            o = c.objective(text, path + ("slo",))
            if o:
                slos.append(Slo(sli, o, "load", where=c.where(path + ("slo",)), origin=rule))
                if pj is not None:
                    pj.slo_rules[sli] = rule
    for sli, obj in (raw.get("slo") if isinstance(raw.get("slo"), dict) else {}).items():
        o = c.objective(obj, path + ("slo", sli))
        if o and sli in CLIENT_SLIS:
            slos.append(Slo(sli, o, "load", where=c.where(path + ("slo", sli))))
    for sli, obj in (raw.get("server-slo") or {}).items():
        o = c.objective(obj, path + ("server-slo", sli))
        if o and sli in CLIENT_SLIS:
            if sli not in SERVER_SLIS:
                c.add(path + ("server-slo", sli), f"{sli} cannot be observed from Prometheus (server-side SLIs: "
                                                  f"{', '.join(SERVER_SLIS)}); use 'prometheus:' with your own query")
                continue
            # query None: the target's Prometheus builds it from the vocabulary
            slos.append(Slo(sli, o, "prometheus", None, c.where(path + ("server-slo", sli))))
    for i, item in enumerate(raw.get("prometheus") or []):
        if isinstance(item, dict) and {"name", "query", "objective"} <= set(item):
            o = c.objective(item["objective"], path + ("prometheus", i, "objective"))
            if o:
                slos.append(Slo(str(item["name"]), o, "prometheus", str(item["query"]), c.where(path + ("prometheus", i))))
    return SloSet(window, tuple(slos))


def _abort(c: _Collector, raw: dict, path) -> AbortCondition | None:
    hold = c.duration(raw.get("for"), path + ("for",), 0.0) or 0.0
    window = c.duration(raw.get("window"), path + ("window",), 1.0) or 1.0
    reason = str(raw.get("reason", ""))
    names = [k for k in raw if k in CLIENT_SLIS or k in ("elapsed", "budget_burnt")]
    if "prometheus" in raw:
        if "is" not in raw:
            c.add(path, "a Prometheus abort condition needs 'is:', e.g. is: '> 0.05'")
            return None
        o = c.objective(raw["is"], path + ("is",))
        text = f"{raw['prometheus']} {raw['is']}" + (f" for {raw['for']}" if "for" in raw else "")
        return AbortCondition(text, None, o, hold, window, "prometheus", str(raw["prometheus"]), reason, c.where(path)) if o else None
    if len(names) != 1:
        c.add(path, "an abort condition names exactly one SLI (e.g. error_ratio: '> 20%') or elapsed: '> 5m'")
        return None
    sli = names[0]
    o = c.objective(raw[sli], path + (sli,))
    if not o:
        return None
    if o.op not in ("<", "<=", ">", ">="):
        c.add(path + (sli,), "abort conditions use <, <=, > or >=")
        return None
    text = f"{sli} {raw[sli]}" + (f" for {raw['for']}" if "for" in raw else "")
    src = str(raw.get("source", "load"))
    if sli == "elapsed":
        src = "clock"
    elif sli == "budget_burnt":
        src = "plan"  # the plan's 30-day budget, counted on the users' view (harness.plan.budget)
    elif src == "prometheus" and sli not in SERVER_SLIS:
        # Fail closed: a stop condition nobody can evaluate is refused, never skipped.
        c.add(path + (sli,), f"{sli} cannot be observed from Prometheus, so this abort condition could never "
                             f"trip (server-side SLIs: {', '.join(SERVER_SLIS)}); drop source: prometheus to "
                             "read it from the load generator")
        return None
    if src == "prometheus":
        text += " (prometheus)"
    # query None for source prometheus: the target's Prometheus builds it (sli.vocabulary)
    return AbortCondition(text, sli, o, hold, window, src, None, reason, c.where(path))


def _validate_ctk(path: Path, data: dict) -> None:
    """A plain Chaos Toolkit experiment: let chaoslib judge it, as `chaos validate` would."""
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid

    try:
        ensure_experiment_is_valid(data)
    except ChaosException as exc:
        raise InvalidInput([Problem(str(path), 1, 1, f"Chaos Toolkit: {exc}")]) from None


def validate_files(paths: list[Path]) -> tuple[list[Experiment], list[Problem]]:
    experiments, problems = [], []
    for p in paths:
        try:
            experiments.append(load_experiment(p))
        except InvalidInput as exc:
            problems.extend(exc.problems or [Problem(str(p), 0, 0, str(exc))])
    return experiments, problems

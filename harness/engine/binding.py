"""An experiment bound to a target: every step and expectation resolved before anything runs.

``bind(experiment, target)`` answers, without touching the system, "can this target do
every step, check every expectation, and observe every source the guard and the SLOs
read?". Every problem comes back as file:line:col with what the target offers instead
(:class:`harness.errors.InvalidInput`, exit 2). ``harness validate --target``,
``--dry-run`` and the run's own preflight all go through here, before the run lock is
taken or load is started. With ``live=True`` (``--dry-run``) each fault also says what
it would act on right now, and a selector matching nothing (or more than the step
allows) is refused the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.checks.base import Check
from harness.checks.damage import with_defaults
from harness.errors import InvalidInput, Problem
from harness.experiment.model import Experiment, Where
from harness.faults.base import Fault
from harness.targets.base import Target


@dataclass
class Binding:
    faults: dict[int, Fault] = field(default_factory=dict)  # method step index -> fault
    checks: list[Check] = field(default_factory=list)
    previews: dict[int, str] = field(default_factory=dict)  # live: what each fault acts on now


def _problem(where: Where | None, exp: Experiment, message: str) -> Problem:
    if where is None:
        return Problem(str(exp.path), 1, 1, message)
    return Problem(where.file, where.line, where.column, message)


def bind(exp: Experiment, target: Target, live: bool = False) -> Binding:
    """Resolve ``exp`` on ``target``; raise InvalidInput listing every problem."""
    problems: list[Problem] = []
    out = Binding()

    def resolve(make, kind: str, params: dict, where: Where | None):
        """The target's implementation of one step or expectation, or None with its problems."""
        try:
            obj = make(kind, params)
        except InvalidInput as exc:
            problems.append(_problem(where, exp, str(exc)))
            return None
        found = [_problem(where, exp, f"{kind}: {p}") for p in obj.problems()]
        problems.extend(found)
        return obj

    for i, step in enumerate(exp.method):
        if step.kind == "fault" and (fault := resolve(target.fault, step.fault, step.params, step.where)):
            out.faults[i] = fault
    exp.expect = with_defaults(exp, target)  # e.g. no-lasting-damage, on by default on the lab
    for ex in exp.expect:
        if check := resolve(target.check, ex.kind, ex.params, ex.where):
            out.checks.append(check)
    problems += _observability(exp, target)
    if not problems and live:
        for i, fault in out.faults.items():
            try:
                preview = fault.preview()
            except InvalidInput as exc:
                problems.append(_problem(exp.method[i].where, exp, f"{exp.method[i].fault}: {exc}"))
                continue
            if preview:
                out.previews[i] = preview
    if problems:
        raise InvalidInput(sorted(problems, key=lambda p: (p.file, p.line, p.column)))
    return out


def _observability(exp: Experiment, target: Target) -> list[Problem]:
    """Every source a stop condition or an SLO reads must exist on this target: a
    condition that cannot be observed can never trip (fail closed: refuse it)."""
    problems = []
    if target.prometheus_url is None:
        for cond in exp.abort:
            if cond.source == "prometheus":
                problems.append(_problem(cond.where, exp, f"abort condition '{cond.text}' reads Prometheus, but the "
                                                         f"{target.kind} target has none (set prometheus-url), so "
                                                         "it could never trip"))
        for sset in (exp.steady_state, exp.under_fault):
            for slo in (sset.slos if sset else ()):
                if slo.source == "prometheus":
                    problems.append(_problem(slo.where, exp, f"SLO '{slo.label}' reads Prometheus, but the "
                                                            f"{target.kind} target has none (set prometheus-url)"))
    if exp.load is not None and not (exp.load.host or target.load_host):
        problems.append(Problem(str(exp.path), 1, 1, f"the experiment sends load, but the {target.kind} target has "
                                                     "no load host: set load.host in the experiment or load-host "
                                                     "in the target file"))
    # one problem per place is enough
    seen, unique = set(), []
    for p in problems:
        if (p.line, p.column, p.message) not in seen:
            seen.add((p.line, p.column, p.message))
            unique.append(p)
    return unique

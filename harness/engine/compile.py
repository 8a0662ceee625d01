"""A harness experiment compiled into the Chaos Toolkit experiment chaoslib runs.

The SLOs become steady-state probes, the method becomes inject/hold/revert actions
laid on a timeline (a ``concurrent`` step starts with the next one), and the rollbacks
end with "revert every fault". Each activity calls a function of
:mod:`harness.engine.activities`, which acts on the live run.
"""
from __future__ import annotations

import copy
from typing import Any

from harness.experiment.model import Experiment

ACT = "harness.engine.activities"


def _py(name: str, func: str, kind: str = "action", **arguments) -> dict[str, Any]:
    activity = {"type": kind, "name": name,
                "provider": {"type": "python", "module": ACT, "func": func, "arguments": arguments}}
    if kind == "probe":
        activity["tolerance"] = True
    return activity


def compile_experiment(exp: Experiment) -> dict[str, Any]:
    """The Chaos Toolkit experiment a harness experiment runs as (a plain Chaos Toolkit
    experiment runs as written)."""
    if exp.plain_ctk:
        return copy.deepcopy(exp.raw)
    doc: dict[str, Any] = {
        k: copy.deepcopy(v) for k, v in exp.raw.items()
        if k in ("version", "title", "description", "tags", "contributions", "configuration",
                 "secrets", "extensions", "controls", "runtime")
    }
    doc.setdefault("description", exp.description or exp.title)  # chaoslib requires one
    probes = []
    if exp.steady_state:
        probes += [_py(s.label, "slo_holds", "probe", index=i) for i, s in enumerate(exp.steady_state.slos)]
    user_ssh = exp.raw.get("steady-state-hypothesis") or {}
    probes += copy.deepcopy(user_ssh.get("probes", []))
    if exp.faults and exp.under_fault and exp.under_fault.slos:
        probes.append(_py("SLOs held while faults were active", "held_under_fault", "probe"))
    if exp.expect:
        probes.append(_py("expectations met (" + ", ".join(e.kind for e in exp.expect) + ")",
                          "expectations_met", "probe"))
    if probes:
        doc["steady-state-hypothesis"] = {"title": user_ssh.get("title", exp.title), "probes": probes}
    doc["method"] = compile_method(exp)
    doc["rollbacks"] = copy.deepcopy(exp.raw.get("rollbacks", [])) + [_py("revert every fault", "revert_all")]
    return doc


def compile_method(exp: Experiment) -> list[dict[str, Any]]:
    """Lay the steps on a timeline: sequential steps follow each other; a
    ``concurrent`` step starts with the next one. Emit inject/revert/hold actions.
    A scenario's method (steps at offsets or on conditions) is one activity that
    harness.scenario.driver runs on the live run."""
    from harness.scenario.timing import scheduled

    if scheduled(exp.method):
        return [_py("run the scenario's schedule", "run_schedule")] + \
            ([_py("await recovery", "await_recovery")] if exp.faults else [])
    timeline: list[tuple[float, int, dict[str, Any]]] = []  # (time, order, activity)
    t = 0.0
    order = 0
    for i, step in enumerate(exp.method):
        if step.kind == "fault":
            timeline.append((t, order, _py(f"inject {step.describe()}", "inject_fault", step=i)))
            order += 1
            timeline.append((t + step.duration, order, _py(f"revert {step.describe()}", "revert_fault", step=i)))
            order += 1
            if not step.concurrent:
                t += step.duration
        elif step.kind == "pause":
            t += step.duration
        else:
            timeline.append((t, order, copy.deepcopy(step.activity)))
            order += 1
    timeline.sort(key=lambda x: (x[0], x[1]))
    method: list[dict[str, Any]] = []
    now = 0.0
    for at, _, activity in timeline:
        if at > now:
            method.append(_py(f"hold {at - now:g}s", "hold", seconds=round(at - now, 3)))
            now = at
        method.append(activity)
    if t > now:
        method.append(_py(f"hold {t - now:g}s", "hold", seconds=round(t - now, 3)))
    if exp.faults:
        method.append(_py("await recovery", "await_recovery"))
    return method

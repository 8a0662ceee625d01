"""Scenario timing: steps at offsets (``at: 20s``) and on conditions (``when:``).

A scenario is an experiment whose method steps may carry

* ``at: 20s``: start this step 20 s after the method started (steps may overlap);
* ``when: {alert-fires: ApiDown, timeout: 60s}``: wait until the alert is firing in
  Prometheus; ``{alert-delivered: ApiDown, receiver: critical}``: until its
  notification reached a receiver; ``{slo-back: availability}`` (or a list, or
  ``all``): until the users' SLOs of ``steady-state`` hold again over ``window``
  (default 5 s) measured after the wait began. A wait that times out fails the run
  closed (every fault reverted, verdict failed, the reason names the step);
* ``revert: LABEL``: a step that reverts the fault labelled LABEL (a fault held
  until then needs no ``duration``).

Without ``at``/``when``/``revert`` a method keeps the engine's plain timeline
(:func:`harness.engine.compile.compile_method`); with them the whole method is one
Chaos Toolkit activity that :mod:`harness.scenario.driver` runs on the same run
(same journal, guard and reverts).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.quantities import format_duration

CONDITIONS = ("alert-fires", "alert-delivered", "slo-back")
DEFAULT_TIMEOUT = 60.0
DEFAULT_SLO_WINDOW = 5.0

WHEN_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "alert-fires": {"type": "string"},
        "alert-delivered": {"type": "string"},
        "receiver": {"type": "string"},
        "slo-back": {"type": ["string", "array"], "items": {"type": "string"}},
        "window": {"type": ["string", "number"]},
        "timeout": {"type": ["string", "number"]},
    },
}
TIMING_KEYS = {"at": {"type": ["string", "number"], "description": "offset from the start of the method, e.g. 20s"},
               "when": WHEN_SCHEMA}
REVERT_STEP = {
    "type": "object",
    "required": ["revert"],
    "additionalProperties": False,
    "properties": {"revert": {"type": "string", "description": "label of the fault to revert"},
                   "label": {"type": "string"}, **TIMING_KEYS},
}


@dataclass(frozen=True)
class When:
    kind: str  # one of CONDITIONS
    value: Any  # alert name, or a tuple of SLI names ("all" expanded at run time)
    timeout: float = DEFAULT_TIMEOUT
    window: float = DEFAULT_SLO_WINDOW
    receiver: str = ""

    def describe(self) -> str:
        if self.kind == "alert-fires":
            what = f"alert {self.value} to fire"
        elif self.kind == "alert-delivered":
            what = f"alert {self.value} to reach {self.receiver or 'a receiver'}"
        else:
            what = f"SLO {', '.join(self.value)} back (over {format_duration(self.window)})"
        return f"{what}, at most {format_duration(self.timeout)}"


def parse_timing(c, raw: dict, path) -> tuple[float | None, When | None]:
    """``at`` and ``when`` of one raw step (problems go to the loader's collector)."""
    at = c.duration(raw.get("at"), path + ("at",)) if "at" in raw else None
    when = None
    w = raw.get("when")
    if isinstance(w, dict):
        p = path + ("when",)
        if c.schema(w, WHEN_SCHEMA, p):
            kinds = [k for k in CONDITIONS if k in w]
            if len(kinds) != 1:
                c.add(p, f"a 'when:' waits on exactly one of {', '.join(CONDITIONS)}")
            else:
                kind = kinds[0]
                value: Any = w[kind]
                if kind == "slo-back":
                    value = tuple([value] if isinstance(value, str) else value)
                if "receiver" in w and kind != "alert-delivered":
                    c.add(p + ("receiver",), "'receiver' goes with alert-delivered")
                if "window" in w and kind != "slo-back":
                    c.add(p + ("window",), "'window' goes with slo-back")
                timeout = c.duration(w.get("timeout"), p + ("timeout",), DEFAULT_TIMEOUT) or DEFAULT_TIMEOUT
                window = c.duration(w.get("window"), p + ("window",), DEFAULT_SLO_WINDOW) or DEFAULT_SLO_WINDOW
                when = When(kind, value, timeout, window, str(w.get("receiver", "")))
    elif w is not None:
        c.add(path + ("when",), "'when:' is a mapping, e.g. {alert-fires: ApiDown, timeout: 60s}")
    return at, when


def revert_step(c, raw: dict, path, step_cls):
    if not c.schema(raw, REVERT_STEP, path):
        return None
    at, when = parse_timing(c, raw, path)
    return step_cls("revert", params={"revert": str(raw["revert"])}, label=str(raw.get("label", "")),
                    where=c.where(path), at=at, when=when)


def scheduled(method) -> bool:
    return any(s.kind == "revert" or s.at is not None or s.when is not None for s in method)


def check_method(c, method, steady, has_load: bool) -> None:
    """Cross-step rules of a scheduled method, each with the step's file:line:col."""
    if not scheduled(method):
        return
    labels: dict[str, int] = {}
    for i, s in enumerate(method):
        if s.kind == "fault" and s.label:
            if s.label in labels:
                c.add(("method", i, "label"), f"label {s.label!r} is already used by step {labels[s.label] + 1}")
            labels[s.label] = i
    reverted = set()
    for i, s in enumerate(method):
        if s.kind == "activity":
            c.add(("method", i), "a scenario with at:/when:/revert: steps runs only harness steps (fault, pause, "
                                 "revert); run Chaos Toolkit activities in an experiment's plain method")
        if s.kind == "revert":
            target = s.params["revert"]
            j = labels.get(target)
            if j is None:
                c.add(("method", i, "revert"), f"no fault step is labelled {target!r} (labels: "
                                               f"{', '.join(sorted(labels)) or 'none'})")
            elif j > i:
                c.add(("method", i, "revert"), f"the fault {target!r} comes after this revert (step {j + 1})")
            else:
                reverted.add(target)
        if s.when is not None and s.when.kind == "slo-back":
            p = ("method", i, "when", "slo-back")
            known = [x.sli for x in (steady.slos if steady else ()) if x.source == "load"]
            if not has_load:
                c.add(p, "slo-back reads the users' SLIs: the scenario needs a 'load:' section")
            for name in s.when.value:
                if name != "all" and name not in known:
                    c.add(p, f"slo-back {name!r}: steady-state has no users' objective for it "
                             f"(it has: {', '.join(known) or 'none'})")
    for i, s in enumerate(method):
        if s.kind == "fault" and not s.duration and s.label not in reverted:
            c.add(("method", i), "a fault with no 'duration' must be reverted by a later step "
                                 "(revert: <its label>)")

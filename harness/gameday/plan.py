"""GameDay plan files (gamedays/*.yaml): what a GameDay runs and how it is scored.

``load_gameday(path)`` returns a :class:`GameDay` or raises :class:`InvalidInput` listing
every problem with file:line:col (as experiments do), nothing run. The scenarios it
names are loaded (and validated) too. Targets come from the operations plan's
incident severities (``plan:``, default plans/lab.yaml): MTTA <= the severity's
``respond``, MTTR <= its ``resolve``, MTTD <= ``respond`` unless the GameDay gives a
stricter ``mttd``; seed 002 §15.6's continuity (>= 99 %) and SLO compliance (100 %).
The format is documented in docs/gamedays.md.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import InvalidInput, Problem
from harness.experiment.loader import _Collector
from harness.experiment.yamlsafe import load_document
from harness.quantities import Objective, parse_objective

ROLES = ("facilitator", "on-call", "observer", "scribe", "incident-commander")
MOMENTS = ("inject", "detected", "acknowledged", "escalated", "mitigated", "resolved", "end")
DUR = {"type": ["string", "number"]}
SCHEMA = {
    "type": "object",
    "required": ["title", "date", "scenarios"],
    "additionalProperties": False,
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "date": {"type": ["string"], "description": "YYYY-MM-DD (optionally HH:MM)"},
        "description": {"type": "string"},
        "plan": {"type": "string", "description": "operations plan: severities, escalation (default plans/lab.yaml)"},
        "objectives": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "settle": {**DUR, "description": "pause between scenarios, and before the one retry of a scenario "
                                         "that found the system not in steady state (default 20s)"},
        "participants": {
            "type": "array", "minItems": 1,
            "items": {"type": "object", "required": ["name", "role"], "additionalProperties": False,
                      "properties": {"name": {"type": "string"}, "role": {"enum": list(ROLES)},
                                     "contact": {"type": "string"}}},
        },
        "scenarios": {
            "type": "array", "minItems": 1,
            "items": {
                "type": "object", "required": ["file", "severity"], "additionalProperties": False,
                "properties": {
                    "file": {"type": "string"},
                    "severity": {"type": "string"},
                    "services": {"type": "array", "items": {"type": "string"}},
                    "checkpoints": {
                        "type": "array",
                        "items": {"type": "object", "required": ["at", "question"], "additionalProperties": False,
                                  "properties": {"at": {"enum": list(MOMENTS)}, "question": {"type": "string"}}},
                    },
                },
            },
        },
        "success-criteria": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "continuity": {"type": "string", "description": "availability while faults are in, e.g. '>= 99%'"},
                "slo-compliance": {"type": "string", "description": "share of scenarios whose SLOs held, '>= 100%'"},
                "mttd": {"type": "string", "description": "plan (the severity's respond time) or '<= 2m'"},
                "mtta": {"type": "string"},
                "mttr": {"type": "string", "description": "plan (the severity's resolve time) or '<= 15m'"},
            },
        },
        "actions": {
            "type": "array",
            "items": {"type": "object", "required": ["action"], "additionalProperties": False,
                      "properties": {"action": {"type": "string"}, "owner": {"type": "string"},
                                     "due": {"type": "string"}, "status": {"type": "string"}}},
        },
    },
}


@dataclass(frozen=True)
class Checkpoint:
    at: str
    question: str


@dataclass
class GameDayScenario:
    file: Path
    severity: str
    experiment: Any  # harness.experiment.model.Experiment
    services: tuple[str, ...] = ()
    checkpoints: tuple[Checkpoint, ...] = ()
    #: targets in seconds for this scenario's severity: mttd, mtta, mttr (None: not set)
    targets: dict[str, float | None] = field(default_factory=dict)
    escalation: tuple[tuple[float, str], ...] = ()  # (after seconds, who)


@dataclass
class GameDay:
    path: Path
    title: str
    date: str
    description: str
    plan_path: Path
    objectives: tuple[str, ...]
    participants: tuple[tuple[str, str], ...]  # (name, role)
    scenarios: list[GameDayScenario]
    continuity: Objective
    slo_compliance: Objective
    actions: tuple[dict, ...] = ()
    postmortem_required: tuple[str, ...] = ("P1", "P2")
    settle: float = 20.0

    @property
    def name(self) -> str:
        return self.path.stem

    def role(self, role: str) -> list[str]:
        return [n for n, r in self.participants if r == role]


def _seconds(text: str) -> float:
    from harness.quantities import parse_duration

    return parse_duration(text)


def load_gameday(path: str | Path) -> GameDay:
    path = Path(path)
    data, positions = load_document(path)
    c = _Collector(str(path), positions)
    if not isinstance(data, dict):
        raise InvalidInput([Problem(str(path), 1, 1, "a GameDay plan is a mapping (title:, date:, scenarios:, ...)")])
    c.schema(data, SCHEMA)
    date = str(data.get("date", ""))
    try:
        dt.datetime.fromisoformat(date) if date else None
    except ValueError:
        c.add(("date",), f"date {date!r} is not YYYY-MM-DD (or YYYY-MM-DD HH:MM)")
    plan_file = Path(str(data.get("plan", "plans/lab.yaml")))
    if not plan_file.is_absolute() and not plan_file.exists() and (path.parent / plan_file).exists():
        plan_file = path.parent / plan_file
    plan = None
    try:
        from harness.plan.loader import load_plan

        plan = load_plan(plan_file)
    except InvalidInput as exc:
        c.add(("plan",), f"the operations plan {plan_file} is not valid: "
                         + "; ".join(str(p) for p in exc.problems[:3]) if exc.problems else str(exc))
    except OSError as exc:
        c.add(("plan",), f"the operations plan {plan_file} cannot be read: {exc}")
    levels = {lv.level: lv for lv in (plan.incidents.levels if plan and plan.incidents else ())}
    if plan is not None and not levels:
        c.add(("plan",), f"the operations plan {plan_file} has no incident severities (incidents: levels:): "
                         "MTTD/MTTR targets come from them")
    crit = data.get("success-criteria") if isinstance(data.get("success-criteria"), dict) else {}

    def objective(key: str, default: str) -> Objective | None:
        text = str(crit.get(key, default))
        return c.objective(text, ("success-criteria", key))

    def target(key: str, level, fallback: str) -> float | None:
        text = str(crit.get(key, "plan"))
        if text == "plan":
            num = getattr(level, fallback, None) if level else None
            return num.value if num else None
        o = c.objective(text, ("success-criteria", key))
        if o is None:
            return None
        if o.op not in ("<", "<=") or o.unit != "seconds":
            c.add(("success-criteria", key), f"{key} is 'plan' or a time bound such as '<= 2m' (got {text!r})")
            return None
        return o.value

    scenarios: list[GameDayScenario] = []
    for i, raw in enumerate(data.get("scenarios") or []):
        if not isinstance(raw, dict) or "file" not in raw:
            continue
        p = ("scenarios", i)
        f = Path(str(raw["file"]))
        if not f.is_absolute() and not f.exists():
            f = path.parent / f
        exp = None
        if not f.exists():
            c.add(p + ("file",), f"scenario file {raw['file']!r} not found (relative to {Path.cwd()} or {path.parent})")
        else:
            try:
                from harness.experiment.loader import load_experiment

                exp = load_experiment(f)
            except InvalidInput as exc:
                c.add(p + ("file",), f"scenario {raw['file']} is not valid: "
                      + "; ".join(str(x) for x in exc.problems[:3]))
        sev = str(raw.get("severity", ""))
        if levels and sev not in levels:
            c.add(p + ("severity",), f"severity {sev!r} is not one of the plan's ({', '.join(levels)})")
        level = levels.get(sev)
        targets = {"mttd": target("mttd", level, "respond"), "mtta": target("mtta", level, "respond"),
                   "mttr": target("mttr", level, "resolve")}
        chain = []
        for after, who in (plan.incidents.escalation.get(sev, ()) if plan and plan.incidents else ()):
            try:
                chain.append((_seconds(after), who))
            except ValueError:
                c.add(p + ("severity",), f"the plan's escalation for {sev} has a bad time {after!r}")
        cps = tuple(Checkpoint(str(x["at"]), str(x["question"])) for x in raw.get("checkpoints") or []
                    if isinstance(x, dict) and "at" in x and "question" in x)
        if exp is not None:
            scenarios.append(GameDayScenario(f, sev, exp, tuple(map(str, raw.get("services") or ())), cps,
                                             targets, tuple(chain)))
    settle = c.duration(data.get("settle"), ("settle",), 20.0)
    continuity = objective("continuity", ">= 99%")
    compliance = objective("slo-compliance", ">= 100%")
    required = ("P1", "P2")
    for fact in (plan.incidents.facts if plan and plan.incidents else ()):
        if fact.what == "postmortem":
            required = tuple(lv for lv in levels if lv in fact.value) or required
    if c.problems:
        unique = {str(x): x for x in c.problems}  # a criterion is read once per scenario
        raise InvalidInput(sorted(unique.values(), key=lambda x: (x.line, x.column)))
    return GameDay(
        path=path, title=str(data["title"]), date=date, description=str(data.get("description", "")),
        plan_path=plan_file, objectives=tuple(map(str, data.get("objectives") or ())),
        participants=tuple((str(x["name"]), str(x["role"])) for x in data.get("participants") or ()),
        scenarios=scenarios, continuity=continuity or parse_objective(">= 99%"),
        slo_compliance=compliance or parse_objective(">= 100%"),
        actions=tuple(dict(a) for a in data.get("actions") or ()), postmortem_required=required,
        settle=settle if settle is not None else 20.0,
    )

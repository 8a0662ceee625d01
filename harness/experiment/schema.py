"""JSON Schema of the harness's experiment format (a superset of Chaos Toolkit's).

A plain Chaos Toolkit experiment (no harness keys) is valid as it is and runs
unchanged. The harness adds: ``load``, ``steady-state``, ``under-fault``, harness
method steps (``fault:`` / ``pause:``), ``abort-when``, ``recovery``, ``expect``,
``target`` and ``plan``. ``harness schema`` prints this schema.
"""
from __future__ import annotations

from typing import Any

from harness.catalogue import check_kinds, fault_kinds
from harness.scenario.timing import TIMING_KEYS
from harness.sli.vocabulary import CLIENT_SLIS

DURATION = {"type": ["string", "number"], "description": "a duration: 30s, 500ms, 2m"}
OBJECTIVE = {"type": "string", "description": "a comparison: '>= 99%', '< 500ms', '<= 0.1%'"}

SLO_MAP = {
    "type": "object",
    "description": "SLI name -> objective, e.g. availability: '>= 99%'",
    "propertyNames": {"enum": list(CLIENT_SLIS)},
    "additionalProperties": OBJECTIVE,
}

PROM_SLO = {
    "type": "object",
    "required": ["name", "query", "objective"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "query": {"type": "string", "description": "PromQL; '$window' is replaced by the window, e.g. [30s]"},
        "objective": OBJECTIVE,
        "unit": {"enum": ["ratio", "seconds", "number"]},
    },
}

SLO_BLOCK = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "window": DURATION,
        "slo": SLO_MAP,
        "prometheus": {"type": "array", "items": PROM_SLO},
        "server-slo": {**SLO_MAP, "description": "the same SLIs, as Prometheus sees them (server side)"},
    },
}

COMMON_STEP = {
    "duration": DURATION,
    "concurrent": {"type": "boolean", "description": "start together with the next step"},
    "label": {"type": "string"},
    **TIMING_KEYS,  # scenarios: at: / when: (harness.scenario.timing)
}


PAUSE_STEP = {
    "type": "object",
    "required": ["pause"],
    "additionalProperties": False,
    "properties": {"pause": DURATION, "label": {"type": "string"}, **TIMING_KEYS},
}


def check_schema(kind) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(kind.required),
        "additionalProperties": False,
        "properties": kind.params,
    }


def fault_step_schema(kind) -> dict[str, Any]:
    props = {"fault": {"const": kind.name}, **COMMON_STEP, **kind.params}
    schema: dict[str, Any] = {
        "type": "object",
        "required": ["fault", *kind.required],
        "additionalProperties": False,
        "properties": props,
    }
    for group in kind.one_of:
        schema.setdefault("allOf", []).append({"not": {"required": list(group)}})
    return schema


ABORT = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        **{sli: OBJECTIVE for sli in CLIENT_SLIS},
        "elapsed": OBJECTIVE,
        "budget_burnt": {**OBJECTIVE, "description": "share of the plan's 30-day error budget burnt by the run, "
                                                      "e.g. '> 2%' (harness.plan.budget)"},
        "prometheus": {"type": "string", "description": "PromQL returning one number"},
        "is": OBJECTIVE,
        "for": DURATION,
        "window": DURATION,
        "source": {"enum": ["load", "prometheus"]},
        "reason": {"type": "string"},
    },
}

CTK_ACTIVITY = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"enum": ["action", "probe"]}},
}


def experiment_schema() -> dict[str, Any]:
    FAULTS, CHECKS = fault_kinds(), check_kinds()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "resilience harness experiment",
        "type": "object",
        "required": ["title"],
        "additionalProperties": False,
        "properties": {
            # Chaos Toolkit's own keys (passed to chaoslib unchanged)
            "version": {"type": "string"},
            "title": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "contributions": {"type": "object"},
            "configuration": {"type": "object"},
            "secrets": {"type": "object"},
            "extensions": {"type": "array"},
            "controls": {"type": "array"},
            "runtime": {"type": "object"},
            "steady-state-hypothesis": {"type": "object"},
            "rollbacks": {"type": "array", "items": CTK_ACTIVITY},
            # Each step is checked against its own kind's schema by the loader
            # (fault_step_schema / PAUSE_STEP / a Chaos Toolkit activity), which
            # gives far clearer messages than one big anyOf.
            "method": {"type": "array", "items": {"type": "object"}},
            # The harness's keys
            "target": {"type": "string", "description": "lab (default), or a target file"},
            "plan": {"type": "string", "description": "operations plan file"},
            "load": {
                "type": "object",
                "required": ["locustfile"],
                "additionalProperties": False,
                "properties": {
                    "locustfile": {"type": "string"},
                    "users": {"type": "integer", "minimum": 1, "maximum": 100000},
                    "spawn-rate": {"type": "number", "exclusiveMinimum": 0},
                    "warmup": DURATION,
                    "host": {"type": "string"},
                    "workers": {"type": "integer", "minimum": 0, "maximum": 64},
                    "expect-workers": {"type": "integer", "minimum": 0},
                    "master-bind": {"type": "string"},
                },
            },
            "steady-state": SLO_BLOCK,
            "under-fault": SLO_BLOCK,
            "abort-when": {"type": "array", "items": ABORT},
            "guard": {
                "type": "object",
                "additionalProperties": False,
                "description": "how long the guard may go blind before it aborts (fail closed)",
                "properties": {
                    "load-blind-after": {**DURATION, "description": "no load record for this long: abort (default 3s)"},
                    "prometheus-blind-after": {**DURATION,
                                               "description": "Prometheus not answering this long: abort (default 5s)"},
                },
            },
            "recovery": {
                "type": "object",
                "additionalProperties": False,
                "required": ["within"],
                "properties": {"within": DURATION, "window": DURATION},
            },
            "expect": {
                "type": "array",
                "items": {
                    "type": "object",
                    "minProperties": 1,
                    "maxProperties": 1,
                    "propertyNames": {"enum": list(CHECKS)},
                    "additionalProperties": {"type": "object"},
                },
            },
        },
        "$defs": {
            "fault-steps": {k: fault_step_schema(v) for k, v in FAULTS.items()},
            "checks": {k: check_schema(v) for k, v in CHECKS.items()},
        },
    }

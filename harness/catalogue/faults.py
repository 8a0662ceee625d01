"""The fault catalogue: every fault kind an experiment may name, with its parameters.

This is target-independent: an experiment is validated against it when the file is
loaded; each target then says which kinds it implements and how
(``Target.faults``). Parameter schemas are JSON Schema; common step keys
(``duration``, ``concurrent``, ``label``) are added by the experiment schema.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: a duration parameter; the loader parses it to seconds (``format: duration``)
DURATION = {"type": ["string", "number"], "format": "duration", "description": "e.g. 30s, 500ms, 2m"}
SELECTOR = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "description": "labels that select pods/replicas, e.g. {app: api}",
}


@dataclass(frozen=True)
class FaultKind:
    name: str
    summary: str
    params: dict[str, Any]  # JSON Schema "properties"
    required: tuple[str, ...] = ()
    one_of: tuple[tuple[str, ...], ...] = ()  # at most one of each group


CATALOGUE: dict[str, FaultKind] = {
    k.name: k
    for k in [
        FaultKind(
            "pod-kill",
            "Kill pods/replicas chosen by label (lab: SIGKILL of the replica process; "
            "Kubernetes: pod delete). What to verify: they restart, the service stays up.",
            {
                "selector": SELECTOR,
                "namespace": {"type": "string"},
                "count": {"type": "integer", "minimum": 1, "maximum": 10000},
                "percent": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
                "grace-period": {"type": "integer", "minimum": 0},
            },
            required=("selector",),
            one_of=(("count", "percent"),),
        ),
        FaultKind(
            "network-latency",
            "Add latency (and jitter) to a named link through Toxiproxy. What to verify: "
            "timeouts adequate, retries work, user impact bounded.",
            {
                "link": {"type": "string"},
                "latency": DURATION,
                "jitter": DURATION,
                "direction": {"enum": ["downstream", "upstream", "both"]},
                "toxicity": {"type": "number", "minimum": 0, "maximum": 1},
            },
            required=("link", "latency"),
        ),
        FaultKind(
            "zone-loss",
            "Cut one zone off (lab: its network namespace; Kubernetes: every node of the "
            "zone cordoned and drained, or made NotReady). What to verify: multi-zone keeps serving.",
            {
                "zone": {"type": "string"},
                "mode": {"enum": ["blackhole", "refuse", "drain", "not-ready"]},
                "namespace": {"type": "string"},
                "timeout": {**DURATION, "description": "Kubernetes drain: give up after (default 120s)"},
            },
            required=("zone",),
        ),
        FaultKind(
            "db-failover",
            "The database primary dies as when its node dies (crash) or is switched over. "
            "What to verify: a replica is promoted, writes resume, no acknowledged write is lost.",
            {
                "mode": {"enum": ["crash", "switchover"]},
                "member": {"type": "string"},
            },
        ),
        FaultKind(
            "db-connections",
            "Fill a database member's connection slots with idle connections, as a leaking "
            "pool or a runaway job does. What to verify: the connections alert fires, the "
            "service keeps its pool, everything is released at revert.",
            {
                "fill": {"type": ["string", "number"]},
                "member": {"type": "string"},
            },
        ),
        FaultKind(
            "node-drain",
            "Cordon and drain nodes through the Eviction API (PodDisruptionBudgets honoured). "
            "What to verify: pods rescheduled, data persists.",
            {
                "node": {"type": "string"},
                "selector": SELECTOR,
                "count": {"type": "integer", "minimum": 1},
                "timeout": DURATION,
            },
            one_of=(("node", "selector"),),
        ),
        FaultKind(
            "node-not-ready",
            "Make nodes NotReady (the kubelet stops reporting). What to verify: pods evicted "
            "and replaced after the toleration.",
            {
                "node": {"type": "string"},
                "selector": SELECTOR,
                "count": {"type": "integer", "minimum": 1},
            },
            one_of=(("node", "selector"),),
        ),
        FaultKind(
            "dependency-down",
            "Stop an external dependency (lab: the stub dependency service). What to verify: "
            "fallback, queueing, alert fires.",
            {"dependency": {"type": "string"}},
        ),
        FaultKind(
            "cpu-stress",
            "Burn CPU where replicas run (lab: the replicas' own CPU through a load endpoint; "
            "Kubernetes: the pods' simulated usage). What to verify: autoscaling, bounded degradation.",
            {
                "selector": SELECTOR,
                "namespace": {"type": "string"},
                "millicores": {"type": "integer", "minimum": 1},
                "percent": {"type": "number", "minimum": 1, "maximum": 100},
            },
        ),
    ]
}

"""Which plan alerts a fault should fire, and which must stay silent: the explicit table
``expect: plan`` expands from.

Deciding "does this alert apply to this fault?" from PromQL would be guesswork; the
table says it once, with the reason printed before injecting. Keys are fault kinds
(the catalogue's); an entry may narrow itself to some parameters (``when``: the
network-latency on the ``dependency`` link is not the one on the ``db`` link). Alerts
the table names but the plan does not define are reported (an input error: the plan
does not cover the fault the table says it should).

    fires    the alert must fire within its ``for`` + detection, reach its receiver,
             and resolve after the revert
    silent   the alert must not fire (the fault is one the system tolerates)
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Applies:
    alert: str
    role: str  # fires | silent
    why: str
    when: tuple[tuple[str, object], ...] = ()  # fault parameters that must match

    def matches(self, params: dict) -> bool:
        return all(params.get(k) == v for k, v in self.when)


def _f(alert: str, why: str, **when) -> Applies:
    return Applies(alert, "fires", why, tuple(sorted(when.items())))


def _s(alert: str, why: str, **when) -> Applies:
    return Applies(alert, "silent", why, tuple(sorted(when.items())))


#: fault kind -> what the plan's alerts must do while it is in (plans/lab.yaml's alerts)
FAULT_ALERTS: dict[str, tuple[Applies, ...]] = {
    "dependency-down": (
        _f("DependencyDown", "the stub dependency is stopped, so its scrape fails: up{job=\"dependency\"} == 0"),
        _s("ApiErrorRateCritical", "the api serves the last good answer while the dependency is down (fallback): "
                                   "users see no errors"),
        _s("ApiNoHealthyBackend", "no api replica is touched: HAProxy keeps every backend"),
    ),
    "pod-kill": (
        _s("ApiNoHealthyBackend", "one replica of several dies: HAProxy keeps the others", count=1),
        _s("ApiErrorRateCritical", "HAProxy's health checks and retries hide one dead replica from users", count=1),
        _s("DatabasePrimaryMissing", "the database is not touched"),
    ),
    "db-failover": (
        _f("DatabaseFailoverHappened", "a replica is promoted: the Patroni timeline changes"),
        _s("ApiNoHealthyBackend", "the api replicas stay up (only writes fail until the promotion)"),
    ),
    "db-connections": (
        _f("DatabaseConnectionsHigh", "idle connections fill the member past 80 % of max_connections"),
        _s("DatabasePrimaryMissing", "the primary keeps running: only its free slots are taken"),
        _s("ApiNoHealthyBackend", "the api keeps the connections its pool already holds"),
    ),
    "zone-loss": (
        _s("ApiNoHealthyBackend", "the replicas of the other zones keep serving"),
    ),
    "network-latency": (
        _s("ApiNoHealthyBackend", "slow answers do not take a backend out"),
        _s("ApiErrorRateCritical", "the 1 s timeout and the fallback keep users served", link="dependency"),
    ),
    "cpu-stress": (
        _s("ApiNoHealthyBackend", "busy replicas still answer their health checks"),
    ),
}


#: the same for the Kubernetes target (plans/k8s-testbed.yaml's alerts: the control
#: plane's own view of nodes and scheduling)
K8S_FAULT_ALERTS: dict[str, tuple[Applies, ...]] = {
    "zone-loss": (
        _f("ZoneNodesNotReady", "every node of the zone turns NotReady: the node lifecycle controller counts "
                                "them unhealthy in their zone", mode="not-ready"),
        _s("ZoneNodesNotReady", "drained nodes stay Ready (only cordoned)", mode=None),
        _s("ZoneNodesNotReady", "drained nodes stay Ready (only cordoned)", mode="drain"),
        _s("PodsUnschedulable", "the two other zones have room for the drained zone's pods", mode=None),
        _s("PodsUnschedulable", "the two other zones have room for the drained zone's pods", mode="drain"),
    ),
    "node-not-ready": (
        _f("ZoneNodesNotReady", "the node turns NotReady: its zone has an unhealthy node"),
    ),
    "node-drain": (
        _s("ZoneNodesNotReady", "a drained node stays Ready (only cordoned)"),
    ),
    "pod-kill": (
        _s("ZoneNodesNotReady", "no node is touched"),
        _s("PodsUnschedulable", "a killed pod's replacement fits where it was"),
    ),
}

TABLES = {"lab": FAULT_ALERTS, "kubernetes": K8S_FAULT_ALERTS}


def applicable(fault_kind: str, params: dict, target_kind: str = "lab") -> list[Applies]:
    table = TABLES.get(target_kind, FAULT_ALERTS)
    return [a for a in table.get(fault_kind, ()) if a.matches(params)]


#: fault kinds that load the replicas above the plan's cpu-target: expect: plan then checks
#: the scaling rule (out to max-replicas within scale-out-within, back to min-replicas,
#: never beyond either)
SCALING_FAULTS: dict[str, str] = {
    "cpu-stress": "every replica burns CPU above the plan's cpu-target, so the autoscaler must scale out",
}

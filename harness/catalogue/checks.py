"""Expectations an experiment may name under ``expect:``, with their parameters."""
from __future__ import annotations

from harness.catalogue.faults import DURATION, SELECTOR, FaultKind as CheckKind

CATALOGUE: dict[str, CheckKind] = {
    k.name: k
    for k in [
        CheckKind(
            "alert-fires",
            "An alert reaches Alertmanager (and, when a receiver is named, a notification "
            "arrives there) within the time the plan allows.",
            {
                "alert": {"type": "string"},
                "within": DURATION,
                "severity": {"type": "string"},
                "receiver": {"type": "string"},
                "labels": SELECTOR,
            },
            required=("alert", "within"),
        ),
        CheckKind(
            "alert-silent",
            "An alert does NOT fire during the run (e.g. no page for a tolerated fault).",
            {"alert": {"type": "string"}},
            required=("alert",),
        ),
        CheckKind(
            "alert-resolves",
            "An alert that fired during the run resolves within the time after the fault is "
            "reverted: Alertmanager stops listing it and its receiver gets the resolved notification.",
            {"alert": {"type": "string"}, "within": DURATION, "receiver": {"type": "string"}},
            required=("alert", "within"),
        ),
        CheckKind(
            "alert-inhibited",
            "An alert fires but the plan's inhibition rule holds it back while the inhibiting "
            "alert fires: Alertmanager marks it inhibited and its receiver is not notified.",
            {"alert": {"type": "string"}, "by": {"type": "string"}, "within": DURATION},
            required=("alert", "within"),
        ),
        CheckKind(
            "alert-suppressed",
            "An alert fires but reaches no receiver: a maintenance window (mute time interval) or a "
            "silence holds it back from the injection until after the revert.",
            {"alert": {"type": "string"}, "within": DURATION, "receiver": {"type": "string"},
             "by": {"enum": ["maintenance", "silence", "any"]}},
            required=("alert", "within"),
        ),
        CheckKind(
            "notification-count",
            "An alert notifies its receiver at most N times (default 1) per repeat interval of "
            "the plan: no duplicate page.",
            {"alert": {"type": "string"}, "receiver": {"type": "string"},
             "max": {"type": "integer", "minimum": 1}},
            required=("alert",),
        ),
        CheckKind(
            "recovers",
            "Everything the fault touched is healthy again within the time after the fault "
            "is reverted (lab: all replicas serving, all backends up; Kubernetes: the "
            "Deployment's available replicas back to desired).",
            {
                "within": DURATION,
                "deployment": {"type": "string"},
                "namespace": {"type": "string"},
                "selector": SELECTOR,
                "from": {"enum": ["inject", "revert"]},
                # Kubernetes: fewest serving pods allowed at any moment (default 1: the
                # service is never down, so a single-replica Deployment fails a pod kill)
                "min-available": {"type": "integer", "minimum": 0},
            },
            required=("within",),
        ),
        CheckKind(
            "replicas",
            "Replica count (desired/current, e.g. by autoscaling) reaches a bound within a time.",
            {
                "deployment": {"type": "string"},
                "hpa": {"type": "string"},
                "namespace": {"type": "string"},
                "app": {"type": "string"},
                "at-least": {"type": "integer", "minimum": 0,
                             "description": "reached within the time (scale out)"},
                "at-most": {"type": "integer", "minimum": 0,
                            "description": "never exceeded while watching (the plan's max)"},
                "back-to": {"type": "integer", "minimum": 0,
                            "description": "after the revert, settles back to this many within the time (scale in)"},
                "never-below": {"type": "integer", "minimum": 0, "description": "never fewer (the plan's min)"},
                "mismatch-at-most": {**DURATION, "description": "desired and current never differ longer than this "
                                     "in one stretch (seed 002 §7.2: HPA desired != current for 5 min warns)"},
                "within": DURATION,
            },
            required=("within",),
        ),
        CheckKind(
            "pods-per-zone",
            "After a zone loss, pods are spread over the remaining zones (at least N per zone).",
            {
                "deployment": {"type": "string"},
                "namespace": {"type": "string"},
                "selector": SELECTOR,
                "min-per-zone": {"type": "integer", "minimum": 0},
                "within": DURATION,
            },
            required=("within",),
        ),
        CheckKind(
            "no-pending-pods",
            "No pod stays Pending longer than the time given.",
            {"namespace": {"type": "string"}, "selector": SELECTOR, "within": DURATION},
            required=("within",),
        ),
        CheckKind(
            "writes-resume",
            "Database writes succeed again within the time after the fault (write outage "
            "measured) and no acknowledged write is lost.",
            {
                "within": DURATION,
                "max-lost-writes": {"type": "integer", "minimum": 0},
            },
            required=("within",),
        ),
        CheckKind(
            "payments-delivered",
            "Nothing the service accepted is lost: every payment it took (sent at once or queued "
            "while the dependency was down) reaches the dependency within the time after the "
            "revert (lab: harness/lab/payments.py and its ledger).",
            {"within": DURATION, "max-lost": {"type": "integer", "minimum": 0},
             "min-queued": {"type": "integer", "minimum": 0}},
        ),
        CheckKind(
            "db-quorum",
            "The database keeps one primary (and its consensus store a quorum) throughout.",
            {"within": DURATION},
        ),
        CheckKind(
            "no-lasting-damage",
            "The system is not left worse than the run found it: gauges read just before the "
            "first fault and after recovery (connections, half-open connections, replication "
            "lag, restarts, memory, open files, disk, alerts still firing, leftover toxics and "
            "rules) each within its tolerance. On by default on the lab (harness/checks/damage.py).",
            {
                "tolerances": {"type": "object", "additionalProperties": {"type": ["number", "string"]},
                               "description": "gauge -> allowed change for the worse: an amount or \"N%\""},
                "settle": DURATION,
                "alert-grace": DURATION,
                "ignore-alerts": {"type": "array", "items": {"type": "string"}},
                "off": {"type": "string", "minLength": 1,
                        "description": "switch the check off; the reason is shown in the report"},
            },
        ),
    ]
}

"""What a plan turns into: Prometheus alert rules and Alertmanager routes.

Alert rules are generated from the plan, never hand-written: the lab writes
:func:`prometheus_rules` to ``<run_dir>/prometheus/rules/alerts.yml`` and
:func:`alertmanager_config` to Alertmanager's config.
"""
from __future__ import annotations

from typing import Any

from harness.plan.model import Plan, _prom_duration


def prometheus_rules(plan: Plan, interval: str = "1s") -> dict[str, Any]:
    return {
        "groups": [{
            "name": f"plan-{plan.name}",
            "interval": interval,
            "rules": [a.prometheus_rule() for a in plan.alerts],
        }]
    }


def alertmanager_config(plan: Plan, webhook_base: str) -> dict[str, Any]:
    """Routes by severity to webhook receivers ``<webhook_base>/hook/<receiver>``.

    The receivers stand for the plan's channels (phone, mail, chat...): the harness
    records what arrives where, so a check can ask "which notification went where".
    """
    if plan.routing is None:
        raise ValueError(f"plan '{plan.name}' has no routes")
    rt = plan.routing
    receivers = {r.receiver for r in rt.routes.values()} | {"default"}
    return {
        "global": {"resolve_timeout": "1m"},
        "route": {
            "receiver": "default",
            "group_by": ["alertname"],
            "group_wait": _prom_duration(rt.group_wait.value),
            "group_interval": _prom_duration(rt.group_interval.value),
            "repeat_interval": _prom_duration(rt.repeat_interval.value),
            "routes": [
                {"receiver": r.receiver, "matchers": [f'severity="{sev}"'], "continue": False}
                for sev, r in rt.routes.items()
            ],
        },
        "receivers": [
            {"name": name, "webhook_configs": [{"url": f"{webhook_base}/hook/{name}", "send_resolved": True,
                                                "max_alerts": 0}]}
            for name in sorted(receivers)
        ],
    }

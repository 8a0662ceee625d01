"""The operations plan: SLOs, alert rules and routes, scaling, backups and RTO/RPO, chaos policy.

    from harness.plan import load_plan
    plan = load_plan("plans/lab.yaml")
    plan.slo("api-availability").objective       # 0.999 (Sloth objective 99.9)
    prometheus_rules(plan); alertmanager_config(plan, "http://127.0.0.1:19013")
"""
from harness.plan.generate import alertmanager_config, prometheus_rules
from harness.plan.loader import default_plan_path, load_plan
from harness.plan.model import (
    SLO, AlertRule, BackupPolicy, ChaosPolicy, Inhibition, Num, Period, Plan, Receiver, Route, Routing,
    ScalingPolicy, Source,
)

__all__ = [
    "SLO", "AlertRule", "BackupPolicy", "ChaosPolicy", "Inhibition", "Num", "Receiver", "Period", "Plan", "Route", "Routing",
    "ScalingPolicy", "Source", "alertmanager_config", "default_plan_path", "load_plan", "prometheus_rules",
]

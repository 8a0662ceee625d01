"""Alert checks on Kubernetes: the lab's, unchanged. They read an Alertmanager, the
harness's recording webhook receiver and the plan (KubernetesTarget.cfg: the target
file's alertmanager-url, alert-receiver and plan); nothing in them is lab-specific.
The test bed gets all three from tools/k8s-testbed/monitoring.py."""
from __future__ import annotations

from harness.errors import InvalidInput
from harness.lab import alerting
from harness.targets import registry
from harness.targets.lab.checks.alerts import LabAlertFires, LabAlertSilent
from harness.targets.lab.checks.alerts_plan import (
    LabAlertInhibited,
    LabAlertResolves,
    LabAlertSuppressed,
    LabNotificationCount,
)

for _cls in (LabAlertFires, LabAlertSilent, LabAlertResolves, LabAlertInhibited, LabAlertSuppressed,
             LabNotificationCount):
    registry.check("kubernetes")(_cls)


def endpoints(target) -> alerting.AlertEndpoints:
    """What the alert checks read on this target: its Alertmanager, the harness's
    recording webhook receiver and the plan the live rules implement. All three are
    needed; a check without them is an input error before anything runs."""
    missing = [k for k, v in (("alertmanager-url", target.alertmanager_url), ("alert-receiver", target.alert_receiver),
                              ("plan", target.plan)) if not v]
    if missing:
        raise InvalidInput(
            f"alert checks on the kubernetes target need {', '.join(missing)} in the target file: "
            "the Alertmanager, the harness's recording webhook receiver it routes to "
            "(python -m harness.lab.alerting webhook), and the plan its rules come from (docs/kubernetes.md)")
    return alerting.AlertEndpoints(target.alertmanager_url, target.alert_receiver, target.plan)


def notifications(target, since: float) -> list[dict]:
    """Notifications the recording receiver got since ``since`` (the run's timeline)."""
    if not (target.alertmanager_url and target.alert_receiver and target.plan):
        return []
    return alerting.notifications(endpoints(target), since=since)

"""What a plan turns into: Prometheus recording and alert rules, Alertmanager's config.

Alert rules are generated from the plan, never hand-written: the lab writes
:func:`prometheus_rules` to ``<run_dir>/prometheus/rules/alerts.yml`` and
:func:`alertmanager_config` to Alertmanager's config; ``harness plan rules`` writes
both (plus the SLI recording rules the lab's Prometheus already has) for any plan.
"""
from __future__ import annotations

from typing import Any

from harness.plan import slo as slo_rules
from harness.plan.model import Plan, Receiver, _prom_duration
from harness.sli import vocabulary


def uses_sli_records(plan: Plan) -> list[str]:
    """Windows of the vocabulary's ``sli:*`` recording rules the plan's alerts read."""
    out = []
    for a in plan.alerts:
        ind = a.indicator
        if ind is not None and ind.kind == "sli" and ind.window in vocabulary.RECORD_WINDOWS \
                and ind.selector == plan.selector and vocabulary.recorded(ind.sli, ind.window) \
                and ind.window not in out:
            out.append(ind.window)
    for a in plan.alerts:
        for w in vocabulary.RECORD_WINDOWS:
            if f"_rate{w}" in a.expr and a.expr.count("sli:") and w not in out:
                out.append(w)
    return out


def prometheus_rules(plan: Plan, interval: str = "1s", sli_records: bool = False) -> dict[str, Any]:
    """Rule groups for Prometheus: (``sli_records``: the vocabulary's SLI recording rules
    the alerts read), the SLOs' Sloth recording rules, then every alert of the plan.

    The lab passes ``sli_records=False``: its Prometheus records the SLIs already."""
    groups: list[dict[str, Any]] = []
    if sli_records:
        windows = tuple(uses_sli_records(plan))
        if windows:
            groups.append({"name": f"plan-{plan.name}-sli", "interval": interval,
                           "rules": vocabulary.recording_rules(plan.selector, windows)})
    for s in plan.slos:
        if s.page is not None or s.ticket is not None:
            groups.append({"name": f"plan-{plan.name}-slo-{s.id}", "interval": interval,
                           "rules": slo_rules.recording_rules(s)})
    groups.append({"name": f"plan-{plan.name}", "interval": interval,
                   "rules": [a.prometheus_rule() for a in plan.alerts]})
    return {"groups": groups}


def _receiver_config(r: Receiver, webhook_base: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": r.name}
    if webhook_base is not None or r.kind == "webhook":
        base = webhook_base or "http://127.0.0.1:9"
        out["webhook_configs"] = [{"url": f"{base}/hook/{r.name}", "send_resolved": r.send_resolved,
                                   "max_alerts": 0}]
    elif r.kind == "slack":
        out["slack_configs"] = [{"api_url_file": f"/etc/alertmanager/secrets/{r.name}-slack-url",
                                 "channel": r.slack_channel or "#alerts", "send_resolved": r.send_resolved,
                                 "title": "{{ .GroupLabels.alertname }}",
                                 "text": "{{ .GroupLabels.alertname }} - {{ .CommonAnnotations.summary }}"}]
    elif r.kind == "pagerduty":
        out["pagerduty_configs"] = [{"routing_key_file": f"/etc/alertmanager/secrets/{r.name}-pagerduty-key",
                                     "send_resolved": r.send_resolved}]
    elif r.kind == "email":
        out["email_configs"] = [{"to": r.email_to or f"{r.name}@example.invalid", "send_resolved": r.send_resolved}]
    return out


def alertmanager_config(plan: Plan, webhook_base: str | None) -> dict[str, Any]:
    """Alertmanager's configuration: one child route per receiver, matching the
    severities the plan says reach it (``continue: true`` so an alert reaches every
    receiver of its severity), the plan's inhibitions and maintenance windows.

    ``webhook_base``: every receiver becomes a webhook ``<webhook_base>/hook/<name>``
    (the lab records what arrives where). ``None``: slack/pagerduty/email receivers
    as the plan types them, secrets read from files under /etc/alertmanager/secrets/.
    """
    if plan.routing is None:
        raise ValueError(f"plan '{plan.name}' has no routes")
    rt = plan.routing
    mute = [p.name for p in plan.maintenance]
    routes = []
    for r in rt.receivers:
        if not r.severities:
            continue
        sev = r.severities
        matcher = f'severity="{sev[0]}"' if len(sev) == 1 else f'severity=~"{"|".join(sev)}"'
        route: dict[str, Any] = {"receiver": r.name, "matchers": [matcher], "continue": True}
        if mute:
            route["mute_time_intervals"] = mute
        routes.append(route)
    conf: dict[str, Any] = {
        "global": {"resolve_timeout": "5m" if webhook_base is None else "1m"},
        "route": {
            "receiver": rt.default_receiver,
            "group_by": list(rt.group_by),
            "group_wait": _prom_duration(rt.group_wait.value),
            "group_interval": _prom_duration(rt.group_interval.value),
            "repeat_interval": _prom_duration(rt.repeat_interval.value),
            "routes": routes,
        },
        "receivers": [{"name": rt.default_receiver}] + [_receiver_config(r, webhook_base) for r in rt.receivers
                                                        if r.name != rt.default_receiver],
    }
    if webhook_base is not None:
        conf["receivers"][0] = {"name": rt.default_receiver, "webhook_configs": [
            {"url": f"{webhook_base}/hook/{rt.default_receiver}", "send_resolved": True, "max_alerts": 0}]}
    if any(r.kind == "email" for r in rt.receivers) and webhook_base is None:
        conf["global"].update({"smtp_smarthost": "localhost:25", "smtp_from": "alertmanager@localhost",
                               "smtp_require_tls": False})
    if plan.inhibitions:
        conf["inhibit_rules"] = [{"source_matchers": i.matchers(i.source_match),
                                  "target_matchers": i.matchers(i.target_match),
                                  **({"equal": list(i.equal)} if i.equal else {})} for i in plan.inhibitions]
    if plan.maintenance:
        conf["time_intervals"] = [{"name": p.name, "time_intervals": [_time_interval(p)]} for p in plan.maintenance]
    return conf


_WEEKDAYS = {"mon": "monday", "tue": "tuesday", "wed": "wednesday", "thu": "thursday", "fri": "friday",
             "sat": "saturday", "sun": "sunday"}


def _time_interval(p) -> dict[str, Any]:
    end = "24:00" if p.end.hour == 23 and p.end.minute == 59 else p.end.strftime("%H:%M")
    out: dict[str, Any] = {"times": [{"start_time": p.start.strftime("%H:%M"), "end_time": end}]}
    if p.days:
        out["weekdays"] = [_WEEKDAYS[d] for d in p.days]
    return out

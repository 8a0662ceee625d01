"""``harness plan check``: what the plan asks that a live Prometheus + Alertmanager do not.

Reads the live rules (Prometheus ``/api/v1/rules``) and the live Alertmanager
configuration (``/api/v2/status``), then, rule by rule: alert missing, ``for``
different, severity label wrong (from the API), threshold different or expression
that cannot fire (the plan's promtool cases run against the live rules, written back
to a file as Prometheus reports them), route to the wrong receiver (``amtool config
routes test`` on the live configuration), inhibition, repeat interval or maintenance
window missing. Every gap names the plan rule and its source.
"""
from __future__ import annotations

import json
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from harness.errors import EnvironmentNotReady
from harness.plan.model import Plan, _prom_duration
from harness.plan.promtest import Result, check_alertmanager, check_rules


def _get(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())
    except (OSError, ValueError, urllib.error.URLError) as exc:
        raise EnvironmentNotReady(f"cannot read {url}: {exc}") from None


def lab_urls(lab_dir: str | None = None) -> tuple[str, str, str | None]:
    """Prometheus and Alertmanager URLs of the running lab, and the plan it was built from."""
    from harness.lab.config import LabConfig, default_run_dir

    try:
        cfg = LabConfig.load(lab_dir or default_run_dir())
    except EnvironmentNotReady as exc:
        raise EnvironmentNotReady(f"no URLs given and {exc}; or pass --prometheus URL --alertmanager URL") from None
    return cfg.prometheus_url, cfg.alertmanager_url, (cfg.plan or None)


def live_rule_groups(prom_url: str) -> list[dict]:
    data = _get(prom_url.rstrip("/") + "/api/v1/rules")
    groups = []
    for g in data.get("data", {}).get("groups", []):
        rules = []
        for r in g.get("rules", []):
            if r.get("type") == "alerting":
                rule = {"alert": r["name"], "expr": r["query"], "for": _prom_duration(float(r.get("duration", 0)))}
            else:
                rule = {"record": r["name"], "expr": r["query"]}
            if r.get("labels"):
                rule["labels"] = r["labels"]
            rules.append(rule)
        groups.append({"name": g["name"], "rules": rules})
    return groups


def check_live(plan: Plan, prom_url: str, am_url: str) -> list[Result]:
    groups = live_rule_groups(prom_url)
    live = {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}
    out: list[Result] = []
    skip: dict[str, set[str]] = {}
    live_for: dict[str, float] = {}
    present = set()
    for a in plan.alerts:
        r = live.get(a.name)
        if r is None:
            out.append(Result(a.name, False, f"alert missing: no alerting rule {a.name} in {prom_url}",
                              str(a.source), "missing"))
            continue
        present.add(a.name)
        out.append(Result(a.name, True, f"alerting rule {a.name} is loaded", str(a.source), "present"))
        want_for = _prom_duration(a.for_.value)
        got_for = r.get("for", "0s")
        from harness.plan.promtest import parse_s

        if abs(parse_s(got_for) - a.for_.value) > 1e-6:
            out.append(Result(a.name, False, f"for is {got_for}; the plan says {want_for}", str(a.for_.source), "for"))
            live_for[a.name] = parse_s(got_for)
            skip.setdefault(a.name, set()).add("not-early")
        sev = (r.get("labels") or {}).get("severity")
        if sev != a.severity:
            out.append(Result(a.name, False, f"severity label is {sev!r}; the plan says {a.severity!r}",
                              str(a.source), "severity-label"))
        skip.setdefault(a.name, set()).add("severity")  # judged from the API above, not twice
    with tempfile.TemporaryDirectory(prefix="plan-check-") as tmp:
        rf = Path(tmp) / "live-rules.yml"
        rf.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        out.extend(check_rules(plan, [str(rf)], skip=skip, live_for=live_for, only=present))
        status = _get(am_url.rstrip("/") + "/api/v2/status")
        original = (status.get("config") or {}).get("original", "")
        if not original:
            raise EnvironmentNotReady(f"{am_url}/api/v2/status has no configuration")
        af = Path(tmp) / "live-alertmanager.yml"
        af.write_text(original)
        out.extend(check_alertmanager(plan, str(af), yaml.safe_load(original)))
    return out

"""The plan's chaos policy applied to a run judged by that plan (seed 002 §4.3, §15.7).

Checked before the lock, the load or any fault, for every run whose experiment names a
plan (``plan:``, ``slo: plan``, ``expect: plan``, ``budget_burnt``) whose plan has a
``chaos:`` section:

  forbidden       the plan's forbidden periods (peak hours, important events)
  business hours  fault kinds the plan lets start only outside them (seed 002 §4.3)
  preconditions   ``chaos.preconditions``: ``full-backup`` (the newest full backup no older
                  than the plan's schedule allows: harness.drills.backups.backup_freshness),
                  ``monitoring`` (Prometheus and Alertmanager answering), ``on-call`` (a
                  name: empty is nobody)
  announcement    ``chaos.announce.webhook``: a JSON POST before the run (what, where,
                  when, plan) and after it (the verdict and its reasons). ``lab`` is the
                  lab's webhook receiver (/hook/announce); HARNESS_ANNOUNCE_URL overrides.
                  An announcement that cannot be delivered breaks the policy (seed 002
                  §15.7 forbids an experiment the team was not told about).

A broken rule refuses the run (exit 3) naming the rule and its source, unless the run is
forced (``harness run --force "reason"``): it then runs, and the journal records the
reason and every rule it broke. The clock is :data:`NOW` (tests set it) or the
``HARNESS_NOW`` environment variable (ISO time, e.g. 2026-12-02T10:00), else local time.
"""
from __future__ import annotations

import json
import os
import time
import urllib.request
from datetime import datetime
from typing import Any, Callable

import yaml

#: the policy's clock (local time, as the plan's hours are written); None: HARNESS_NOW or now
NOW: Callable[[], datetime] | None = None


def now() -> datetime:
    if NOW is not None:
        return NOW()
    env = os.environ.get("HARNESS_NOW")
    if env:
        return datetime.fromisoformat(env)
    return datetime.now()


def _chaos_extras(path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(open(path)) or {}
    except (OSError, yaml.YAMLError):
        return {}
    chaos = doc.get("chaos") or {}
    return {k: chaos.get(k) for k in ("preconditions", "announce") if chaos.get(k)}


def _src(node: dict | None, default: str) -> str:
    s = (node or {}).get("source") or {}
    if isinstance(s, dict) and s.get("seed"):
        return f"seed {s['seed']} {s.get('section', '')}".strip()
    return default


def announce_url(run, extras: dict) -> str | None:
    env = os.environ.get("HARNESS_ANNOUNCE_URL")
    if env:
        return env
    hook = (extras.get("announce") or {}).get("webhook")
    if not hook:
        return None
    if hook == "lab":
        cfg = getattr(run.target, "cfg", None)
        if cfg is None:
            return None
        from harness.lab.alerting import webhook_url

        return webhook_url(cfg) + "/hook/announce"
    return str(hook)


def _answers(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return None if r.status == 200 else f"HTTP {r.status}"
    except Exception as exc:  # noqa: BLE001 - not answering is the finding
        return f"{type(exc).__name__}: {exc}"


def _post(url: str, body: dict) -> str | None:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return None if 200 <= r.status < 300 else f"HTTP {r.status}"
    except Exception as exc:  # noqa: BLE001 - not delivered: the run is refused before, and the miss recorded after
        return f"{type(exc).__name__}: {exc}"


def check(run) -> tuple[list[dict], list[dict]]:
    """(rules checked, rules broken): each {rule, source, detail}."""
    pj = run.exp.plan_judging
    chaos = pj.plan.chaos
    when = now()
    kinds = [s.fault for s in run.exp.faults]
    checked, broken = [], []

    def rule(name: str, source: str, problem: str | None, fine: str) -> None:
        rec = {"rule": name, "source": source, "detail": problem or fine, "ok": problem is None}
        checked.append(rec)
        if problem:
            broken.append(rec)

    for p in chaos.forbidden:
        rule(f"forbidden period '{p.name}'", str(p.source or chaos.source),
             f"{when:%a %Y-%m-%d %H:%M} is inside it" if p.contains(when) else None,
             f"{when:%a %H:%M} is outside it")
    strict = [k for k in kinds if k in chaos.outside_business_hours]
    bh = chaos.business_hours
    hours = f"{'/'.join(bh.days)} {bh.start:%H:%M}-{bh.end:%H:%M}"
    if strict:
        rule(f"{', '.join(strict)} only outside business hours ({hours})", str(bh.source),
             f"{when:%a %Y-%m-%d %H:%M} is inside business hours" if chaos.in_business_hours(when) else None,
             f"{when:%a %H:%M} is outside business hours")
    extras = _chaos_extras(pj.path)
    pre = extras.get("preconditions") or {}
    psrc = _src(pre, str(chaos.source))
    if pre.get("full-backup"):
        cfg = getattr(run.target, "cfg", None)
        if cfg is None:
            rule("a fresh full backup", psrc, f"the {run.target.kind} target has no backup repository the harness "
                                              "can read (could not verify)", "")
        else:
            try:
                from harness.drills.backups import backup_freshness

                f = backup_freshness(policy=pj.plan.backup, cfg=cfg)
                age = f"{f.age / 3600:.1f} h old" if f.age is not None else "none"
                allowed = f"{f.allowed / 3600:.1f} h" if f.allowed is not None else "no limit"
                rule("a fresh full backup", psrc, None if f.ok else f"not fresh: {f.reason} (newest full {age}, "
                                                                    f"allowed {allowed}; {f.schedule})",
                     f"newest full {age} (allowed {allowed})")
            except Exception as exc:  # noqa: BLE001 - a precondition that cannot be read is not met
                rule("a fresh full backup", psrc, f"could not verify: {type(exc).__name__}: {exc}", "")
    if pre.get("monitoring"):
        bad = []
        for name, url in (("Prometheus", run.target.prometheus_url),
                          ("Alertmanager", getattr(run.target, "alertmanager_url", None))):
            if not url:
                bad.append(f"{name}: the target has none")
            elif (why := _answers(url.rstrip("/") + "/-/ready")):
                bad.append(f"{name} {url}: {why}")
        rule("monitoring and alerting answering", psrc, "; ".join(bad) or None, "Prometheus and Alertmanager ready")
    if "on-call" in pre:
        who = str(pre.get("on-call") or "").strip()
        rule("someone on call", psrc, None if who else "the plan names nobody on call", f"on call: {who}")
    if extras.get("announce"):
        url = announce_url(run, extras)
        rule("announcement before the run", _src(extras["announce"], psrc),
             None if url else "no announcement webhook to send to", f"to {url}")
    return checked, broken


def _message(run, phase: str, **more) -> dict:
    pj = run.exp.plan_judging
    return {"phase": phase, "run": run.run_id, "what": f"{run.exp.title}: "
            + "; ".join(s.describe() for s in run.exp.faults), "where": run.target.describe(),
            "experiment": str(run.exp.path), "plan": f"{pj.plan.name} ({pj.path})", "at": time.time(), **more}


def enforce(run) -> None:
    from harness.plan.run_hooks import PlanRefused

    pj = run.exp.plan_judging
    if pj is None or pj.plan.chaos is None:
        return
    checked, broken = check(run)
    forced = getattr(run, "force_reason", None)
    run.policy_record = {"checked": checked, "broken": broken, "forced": forced, "announcements": []}
    for r in checked:
        if r["ok"]:
            run.event("policy", f"{r['rule']}: {r['detail']} (source: {r['source']})")
    if broken and not forced:
        lines = "; ".join(f"{r['rule']}: {r['detail']} (source: {r['source']})" for r in broken)
        raise PlanRefused(f"the chaos policy of plan {pj.plan.name} refuses this run: {lines}. Nothing was "
                          "started; `harness run --force \"reason\"` runs it anyway and records why")
    if broken:
        run.event("policy-forced", f"--force \"{forced}\": run despite " + "; ".join(
            f"{r['rule']} ({r['detail']}) (source: {r['source']})" for r in broken), reason=forced, broken=broken)
    url = announce_url(run, _chaos_extras(pj.path))
    if url and not run.dry_run:
        body = _message(run, "before", forced=forced, broken=[r["rule"] for r in broken])
        err = _post(url, body)
        run.policy_record["announcements"].append({"phase": "before", "url": url, "error": err})
        if err and not forced:
            raise PlanRefused(f"the chaos policy of plan {pj.plan.name} refuses this run: the announcement could "
                              f"not be delivered to {url}: {err} (source: seed 002 §15.7: no experiment the team was not "
                              "told about). Nothing was started")
        run.event("announce", f"before the run to {url}" + (f": FAILED {err}" if err else ""))


def after(run, result) -> dict | None:
    rec = getattr(run, "policy_record", None)
    if rec is None:
        return None
    pj = run.exp.plan_judging
    url = announce_url(run, _chaos_extras(pj.path))
    if url and not run.dry_run:
        body = _message(run, "after", result=result.verdict.status, reasons=result.verdict.reasons,
                        forced=rec.get("forced"))
        err = _post(url, body)
        rec["announcements"].append({"phase": "after", "url": url, "error": err})
        run.event("announce", f"after the run ({result.verdict.status}) to {url}" + (f": FAILED {err}" if err else ""))
    return rec

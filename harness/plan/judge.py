"""Experiments judged by their operations plan: ``plan:``, ``slo: plan``, ``expect: plan``.

    plan: plans/lab.yaml#api          # the plan and the service in it (or the target's default)
    steady-state: {window: 10s, slo: plan}
    expect: plan                      # or a list holding `plan` among other expectations

``slo: plan`` turns the service's SLOs into the users'-view objectives (availability
99.9 % -> ``availability >= 99.9%``; "p95 <= 500 ms" -> ``latency_p95 < 500ms``;
error ratio 99.9 % -> ``error_ratio <= 0.1%``). ``expect: plan`` expands, through the
explicit table of :mod:`harness.plan.fault_alerts`, into ``alert-fires`` +
``alert-resolves`` for each plan alert the injected faults should fire and
``alert-silent`` for each that must stay quiet; the time each is allowed is the
alert's ``for`` plus the detection path (scrape, evaluation, Alertmanager grouping),
printed with the reason before anything is injected. Problems are input errors at
the ``plan``/``slo``/``expect`` key (file:line:col, exit 2).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import InvalidInput
from harness.plan.fault_alerts import SCALING_FAULTS, applicable

#: the lab's detection path (harness/lab/core.py: scrape 1 s, scrape timeout 1 s,
#: rule evaluation 1 s): what an alert needs on top of its `for` to be seen
SCRAPE_S, SCRAPE_TIMEOUT_S, EVAL_S = 1.0, 1.0, 1.0
#: slack for process scheduling on a loaded 2-core machine; printed with every bound
SLACK_S = 5.0


@dataclass(frozen=True)
class Applied:
    """One plan alert an experiment's faults bring into play, and why."""

    alert: str
    role: str  # fires | silent
    fault: str  # the step that brings it in ("dependency-down" at method[0])
    why: str
    source: str  # the plan rule's source (seed and section)
    fire_within: float | None = None
    resolve_within: float | None = None
    budget: str = ""  # how fire_within/resolve_within were made up

    def line(self) -> str:
        if self.role == "scales":
            return f"{self.alert}: {self.budget}: {self.why} (source: {self.source})"
        if self.role == "fires":
            return (f"{self.alert} must fire within {self.fire_within:g}s and resolve within "
                    f"{self.resolve_within:g}s of the revert ({self.budget}): {self.why} (source: {self.source})")
        return f"{self.alert} must stay silent: {self.why} (source: {self.source})"


@dataclass
class PlanJudging:
    """What an experiment takes from its plan (kept on the Experiment for the run)."""

    ref: str
    path: Path
    service: str
    plan: Any  # harness.plan.model.Plan
    target_kind: str = "lab"  # which fault -> alert table applies (harness/plan/fault_alerts.py)
    applied: list[Applied] = field(default_factory=list)
    slo_rules: dict[str, str] = field(default_factory=dict)  # SLI -> "plan rule (source)"

    def rule_for(self, kind: str, params: dict) -> str:
        """The plan rule (and source) a verdict came from, '' when none."""
        if kind.startswith("alert-") and params.get("alert"):
            try:
                a = self.plan.alert(params["alert"])
            except KeyError:
                return ""
            return f"plan {self.plan.name} alert {a.name} (for {a.for_.text}; {a.source})"
        sc = self.plan.scaling
        if kind == "replicas" and sc is not None and sc.scale_out_within is not None:
            mismatch = (f", mismatch-within {sc.mismatch_within.text} ({sc.mismatch_within.source})"
                        if sc.mismatch_within is not None else "")
            return (f"plan {self.plan.name} scaling: min {sc.min_replicas.text}, max {sc.max_replicas.text}, "
                    f"scale-out-within {sc.scale_out_within.text} ({sc.scale_out_within.source}; {sc.source})"
                    + mismatch)
        return ""


def _target_file(target: str | None, exp_path: Path) -> Path | None:
    if target in (None, "", "lab") or not isinstance(target, str):
        return None
    for base in (Path.cwd(), exp_path.parent):
        if (base / target).exists():
            return base / target
    return None


def target_kind(target: str | None, exp_path: Path) -> str:
    if target in (None, "", "lab"):
        return "lab"
    f = _target_file(target, exp_path)
    if f is None:
        return "lab"  # the loader reports a missing target file itself
    from harness.experiment.yamlsafe import load_document

    try:
        data, _ = load_document(f)
    except Exception:  # noqa: BLE001 - the loader reports it
        return "lab"
    return str(data.get("kind", "")) if isinstance(data, dict) else ""


def default_plan_ref(target: str | None, exp_path: Path | None = None) -> str | None:
    """The target's default plan: the lab's is plans/lab.yaml (its rules are generated
    from it); a target file's is its ``plan:`` key (relative to the target file)."""
    if target in (None, "lab"):
        from harness.plan import default_plan_path

        return str(default_plan_path())
    f = _target_file(target, exp_path or Path.cwd())
    if f is None:
        return None
    from harness.experiment.yamlsafe import load_document

    try:
        data, _ = load_document(f)
    except Exception:  # noqa: BLE001 - the loader reports it
        return None
    plan = data.get("plan") if isinstance(data, dict) else None
    if not isinstance(plan, str) or not plan:
        return None
    return str((f.parent / plan).resolve()) if not Path(plan).is_absolute() else plan


def _find(path_text: str, exp_path: Path) -> Path | None:
    p = Path(path_text)
    if p.is_absolute():
        return p if p.exists() else None
    from harness.plan import default_plan_path

    repo = default_plan_path().parent.parent
    for base in (Path.cwd(), exp_path.parent, repo):
        if (base / p).exists():
            return base / p
    return None


def resolve(c, raw: Any, exp_path: Path, target: str | None, needed: bool) -> PlanJudging | None:
    """The experiment's ``plan:`` (or the target's default when ``needed``). Problems go
    to the loader's collector ``c`` at the ``plan`` key."""
    if raw is None and not needed:
        return None
    text = raw if raw is not None else default_plan_ref(target, exp_path)
    where = ("plan",) if raw is not None else ()
    if text is None:
        c.add(("steady-state",), f"'plan' objectives/expectations need a plan: the {target} target has no "
                                 "default; add plan: plans/<file>.yaml#<service>")
        return None
    if not isinstance(text, str) or not text.strip():
        c.add(where, "plan: give a plan file and service, e.g. plans/lab.yaml#api")
        return None
    file_part, _, service = text.partition("#")
    found = _find(file_part, exp_path)
    if found is None:
        c.add(where, f"plan file {file_part!r} not found (relative to {Path.cwd()}, {exp_path.parent} or the "
                     "repository)")
        return None
    from harness.plan import load_plan

    try:
        plan = load_plan(found)
    except InvalidInput as exc:
        c.add(where, f"plan {file_part} is not valid: " + "; ".join(str(p) for p in exc.problems[:3])
              + (f" (and {len(exc.problems) - 3} more)" if len(exc.problems) > 3 else "") if exc.problems
              else f"plan {file_part} is not valid: {exc}")
        return None
    services = sorted({s.service for s in plan.slos})
    kind = target_kind(target, exp_path)
    if not service and not services:
        # a plan of alerts only (the test bed's): expect: plan works, slo: plan says why not
        return PlanJudging(text, found, "", plan, target_kind=kind)
    if not service:
        if len(services) != 1:
            c.add(where, f"plan {file_part} has {len(services)} services ({', '.join(services)}): name one, "
                         f"e.g. {file_part}#{services[0] if services else 'api'}")
            return None
        service = services[0]
    elif service not in services:
        c.add(where, f"plan {file_part} has no service {service!r} (it has: {', '.join(services) or 'none'})")
        return None
    return PlanJudging(text, found, service, plan, target_kind=kind)


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.6g}%"


def slos(c, pj: PlanJudging, path: tuple) -> list[tuple[str, str, str]]:
    """(sli, objective text, plan rule) for the service's SLOs the users' view can measure."""
    out = []
    for s in pj.plan.slos:
        if s.service != pj.service:
            continue
        rule = f"plan {pj.plan.name} SLO {s.id} objective {_pct(s.objective)} ({s.source})"
        if s.plugin_id == "availability":
            out.append(("availability", f">= {_pct(s.objective)}", rule))
        elif s.plugin_id == "error_ratio":
            out.append(("error_ratio", f"<= {_pct(1 - s.objective)}", rule))
        elif s.plugin_id.startswith("latency_p") and s.threshold is not None:
            out.append((s.plugin_id, f"< {s.threshold.value * 1000:g}ms", rule))
    if not out:
        c.add(path, f"slo: plan: service {pj.service} of plan {pj.plan.name} has no SLO the harness measures "
                    "(availability, error_ratio, latency_pNN)")
    return out


def expectations(c, pj: PlanJudging, method: list, path: tuple) -> list[tuple[str, dict]]:
    """(check kind, params) that ``expect: plan`` stands for; fills ``pj.applied``."""
    rt = pj.plan.routing
    group_wait = rt.group_wait.value if rt else 0.0
    group_interval = rt.group_interval.value if rt else 0.0
    names = {a.name for a in pj.plan.alerts}
    seen: dict[str, Applied] = {}
    missing = []
    for i, step in enumerate(method):
        if step.kind != "fault":
            continue
        for ap in applicable(step.fault, step.params, pj.target_kind):
            if ap.alert not in names:
                missing.append(f"{ap.alert} ({ap.role} for {step.fault}: {ap.why})")
                continue
            if ap.alert in seen:
                if ap.role == "fires" and seen[ap.alert].role == "silent":
                    pass  # a later fault that fires it wins below
                else:
                    continue
            rule = pj.plan.alert(ap.alert)
            src = str(rule.source)
            if ap.role == "fires":
                window = _window_s(rule)
                detect = SCRAPE_S + SCRAPE_TIMEOUT_S + EVAL_S
                fire = rule.for_.value + detect + group_wait + SLACK_S
                resolve_ = window + detect + group_interval + SLACK_S
                budget = (f"for {rule.for_.text} + detection {detect:g}s (scrape, timeout, evaluation) + "
                          f"group_wait {group_wait:g}s + slack {SLACK_S:g}s; resolve: "
                          + (f"window {window:g}s + " if window else "")
                          + f"detection {detect:g}s + group_interval {group_interval:g}s + slack {SLACK_S:g}s")
                seen[ap.alert] = Applied(ap.alert, "fires", f"{step.fault} (method[{i}])", ap.why, src,
                                         round(fire, 3), round(resolve_, 3), budget)
            else:
                seen[ap.alert] = Applied(ap.alert, "silent", f"{step.fault} (method[{i}])", ap.why, src)
    if missing:
        c.add(path, f"expect: plan: plan {pj.plan.name} does not define " + "; ".join(missing)
              + " (harness/plan/fault_alerts.py says the fault brings them into play)")
    if not seen and not missing and not any(s.kind == "fault" and s.fault in SCALING_FAULTS for s in method):
        kinds = sorted({s.fault for s in method if s.kind == "fault"})
        c.add(path, f"expect: plan: no alert of plan {pj.plan.name} applies to {', '.join(kinds) or 'no fault'} "
                    "(harness/plan/fault_alerts.py): write the expectations out")
    pj.applied = list(seen.values())
    out: list[tuple[str, dict]] = []
    out += _scaling(c, pj, method, path)
    for a in pj.applied:
        if a.role == "fires":
            out.append(("alert-fires", {"alert": a.alert, "within": a.fire_within}))
            out.append(("alert-resolves", {"alert": a.alert, "within": a.resolve_within}))
        elif a.role == "silent":
            out.append(("alert-silent", {"alert": a.alert}))
    return out


def _scaling(c, pj: PlanJudging, method: list, path: tuple) -> list[tuple[str, dict]]:
    """The plan's scaling rule for faults that should make the autoscaler act."""
    steps = [(i, s) for i, s in enumerate(method) if s.kind == "fault" and s.fault in SCALING_FAULTS]
    if not steps:
        return []
    sc = pj.plan.scaling
    need = (sc.min_replicas, sc.max_replicas, sc.scale_out_within) if sc else (None,)
    if any(n is None for n in need):
        c.add(path, f"expect: plan: {steps[0][1].fault} should make the autoscaler act, but plan {pj.plan.name} "
                    "gives no scaling min-replicas, max-replicas and scale-out-within")
        return []
    lo, hi, within = int(sc.min_replicas.value), int(sc.max_replicas.value), sc.scale_out_within
    i, step = steps[0]
    params = {"at-least": hi, "at-most": hi, "never-below": lo, "back-to": lo, "within": within.value}
    budget = (f"out to {hi} (max-replicas) within {within.text} (scale-out-within), back to {lo} (min-replicas), "
              f"never above {hi} nor below {lo}")
    sources = f"scale-out-within {within.source}; min/max {sc.max_replicas.source}"
    if sc.mismatch_within is not None:
        params["mismatch-at-most"] = sc.mismatch_within.value
        budget += f", desired != current for {sc.mismatch_within.text} at most (mismatch-within)"
        sources += f"; mismatch-within {sc.mismatch_within.source}"
    pj.applied.append(Applied("replicas", "scales", f"{step.fault} (method[{i}])", SCALING_FAULTS[step.fault],
                              sources, budget=budget))
    return [("replicas", params)]


def _window_s(rule) -> float:
    from harness.quantities import parse_seconds

    ind = rule.indicator
    if ind is not None and ind.window:
        try:
            return float(parse_seconds(ind.window))
        except ValueError:
            return 0.0
    return 0.0


def _is_plan(v: Any) -> bool:
    return isinstance(v, str) and v.strip() == "plan"


def needs_plan(data: dict) -> bool:
    """Does the document say `slo: plan` or `expect: plan` anywhere?"""
    for key in ("steady-state", "under-fault"):
        if isinstance(data.get(key), dict) and _is_plan(data[key].get("slo")):
            return True
    ex = data.get("expect")
    if any(isinstance(a, dict) and "budget_burnt" in a for a in data.get("abort-when") or []):
        return True
    return _is_plan(ex) or (isinstance(ex, list) and any(_is_plan(i) for i in ex))


def schema_view(data: Any) -> Any:
    """The document as the JSON Schema sees it: the `plan` placeholders taken out (each is
    expanded from the plan by the loader, at the same place)."""
    if not isinstance(data, dict) or not needs_plan(data):
        return data
    out = dict(data)
    for key in ("steady-state", "under-fault"):
        if isinstance(out.get(key), dict) and _is_plan(out[key].get("slo")):
            out[key] = {k: v for k, v in out[key].items() if k != "slo"}
    ex = out.get("expect")
    if _is_plan(ex):
        out["expect"] = []
    elif isinstance(ex, list):
        out["expect"] = [i for i in ex if not _is_plan(i)]
    return out

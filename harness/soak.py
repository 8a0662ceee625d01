"""Soak: one suite again and again on one environment, judged over the loops.

``harness soak --loops 3 --shuffle ci`` runs every experiment and scenario tagged ``ci``
(the files ``harness verify`` would run), loop after loop, each run with the usual safety
(run lock, preflight, guard, every fault reverted, the default expectations such as
``no-lasting-damage``). With ``--shuffle`` each loop runs the items in another order
(seeded: ``--seed`` replays it) and picks parameters where a step allows it (a zone-loss
naming a role, e.g. ``db-replica``, cuts one of the zones holding that role now, chosen
at random). It stops early on Ctrl-C, when a fault could not be reverted, or when the
duration is over.

What it reports (``<report-dir>/soak-<stamp>/``: soak.json, soak.md, soak.html):
  * each item's verdicts over the loops; an item whose verdict changed while its
    parameters did not is FLAKY, and named;
  * the first run that failed, and why;
  * the no-lasting-damage gauges after each run, as drift charts over the soak, and the
    soak's end against its start: every gauge read at the start and again after the
    last run, with the per-run tolerances (a slow leak that no single run shows, such as
    memory growing a little with each run, fails the soak here). The start is read after
    the first loop (``warmup_loops``) when another loop follows: a cold lab's connection
    pools are empty, so the first loop's warm-up would read as a leak (measured: 4 -> 38
    backends over a 3-loop soak, all pooled and idle); a one-loop soak is judged
    against the cold start;
  * the error budget the whole soak burnt (users' requests over every run).
"""
from __future__ import annotations

import dataclasses
import json
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from harness.verify import Item

#: verdicts that stop the soak: the person asked to stop, or the environment is no longer trusted
STOPPING = ("interrupted",)


@dataclass
class SoakRun:
    loop: int
    position: int
    path: str
    title: str
    status: str
    exit_code: int
    reasons: list[str]
    params: dict[str, Any]
    started_at: float
    seconds: float
    report: str | None = None
    gauges: dict[str, float] = field(default_factory=dict)  # no-lasting-damage, after recovery
    requests: int = 0
    failed: int = 0
    objective: float | None = None


@dataclass
class Soak:
    suite: str
    items: list[Item]
    runner: Callable[[Item, dict[str, Any]], SoakRun]
    loops: int | None = None
    duration: float | None = None
    shuffle: bool = False
    seed: int | None = None
    runs: list[SoakRun] = field(default_factory=list)
    started_at: float = 0.0
    ended_at: float = 0.0
    stopped: str | None = None
    #: the target's no-lasting-damage check, read before the first run and judged after
    #: the last one (None: the target has none)
    damage: Any = None
    end_state: Any = None  # CheckResult of the end against the start
    #: loops run before the start is read (when another loop follows): a cold lab's pools
    #: are empty and its caches cold, so the first loop's warm-up is not a leak
    warmup_loops: int = 1
    start_phase: str = ""  # which reading the end was judged against
    cold_start: dict[str, float] | None = None  # the gauges before the first run

    def execute(self, progress: Callable[[str], None] = lambda s: None) -> "Soak":
        self.seed = self.seed if self.seed is not None else random.SystemRandom().randrange(1 << 30)
        rng = random.Random(self.seed)
        self.started_at = time.time()
        deadline = self.started_at + self.duration if self.duration else None
        if self.damage is not None:
            progress("reading the gauges before the first run")
            self.damage.before_method()
            self.cold_start = dict(self.damage.before or {})
            self.start_phase = "before the first run (cold lab)"
        loop = 0
        while True:
            loop += 1
            if self.loops is not None and loop > self.loops:
                break
            if deadline and time.time() >= deadline:
                break
            if self.damage is not None and self.warmup_loops and loop == self.warmup_loops + 1:
                self._read_warm_start(progress)
            order = list(self.items)
            if self.shuffle:
                rng.shuffle(order)
            for pos, item in enumerate(order):
                if deadline and time.time() >= deadline and self.loops is None:
                    break
                progress(f"loop {loop} [{pos + 1}/{len(order)}] {item.path}")
                run = self.runner(item, {"loop": loop, "position": pos, "rng": rng if self.shuffle else None})
                self.runs.append(run)
                progress(f"  -> {run.status}" + (f": {run.reasons[0]}" if run.reasons else ""))
                if run.status in STOPPING or any("harness cleanup" in r for r in run.reasons):
                    self.stopped = f"loop {loop}, {item.path}: {run.status}" + (
                        f" ({run.reasons[0]})" if run.reasons else "")
                    break
            if self.stopped:
                break
        if self.damage is not None and not any(r.status in STOPPING for r in self.runs):
            progress("reading the gauges after the last run (a worse one is read again for up to 20 s)")
            self.end_state = self.damage.judge_now(start_phase=self.start_phase)
            progress(f"  -> {self.end_state.summary}")
        self.ended_at = time.time()
        return self

    def _read_warm_start(self, progress: Callable[[str], None]) -> None:
        """The start the end is judged against: the lab after the warm-up loop(s), when
        every pool has met every item once. Kept cold when it cannot be read (the end is
        then judged against the cold start, and says so)."""
        progress(f"reading the gauges after the warm-up (loop {self.warmup_loops}): the start the end is judged against")
        cold, cold_error = self.damage.before, self.damage.before_error
        self.damage.before_error = None
        self.damage.before_method()
        if self.damage.before_error or self.damage.before is None:
            progress(f"  -> could not read them ({self.damage.before_error}); judging against the cold start")
            self.damage.before, self.damage.before_error = cold, cold_error
            return
        self.start_phase = f"after loop {self.warmup_loops} (warm-up)"

    # -- judgement ---------------------------------------------------------------------
    def verdicts(self) -> dict[str, list[SoakRun]]:
        out: dict[str, list[SoakRun]] = {}
        for r in self.runs:
            out.setdefault(r.path, []).append(r)
        return out

    def flaky(self) -> dict[str, str]:
        """Items whose verdict changed between runs with the same parameters: path -> why."""
        out = {}
        for path, runs in self.verdicts().items():
            by_params: dict[str, set[str]] = {}
            for r in runs:
                by_params.setdefault(json.dumps(r.params, sort_keys=True), set()).add(r.status)
            for params, statuses in by_params.items():
                if len(statuses) > 1:
                    loops = ", ".join(f"loop {r.loop}: {r.status}" for r in runs
                                      if json.dumps(r.params, sort_keys=True) == params)
                    out[path] = f"{' vs '.join(sorted(statuses))} with the same parameters {params} ({loops})"
        return out

    def first_failure(self) -> SoakRun | None:
        return next((r for r in self.runs if r.exit_code != 0), None)

    def budget(self) -> dict[str, Any]:
        """The error budget of the whole soak: users' requests and failures over every run,
        against the strictest availability objective the runs had."""
        from harness.sli.vocabulary import error_budget

        total = sum(r.requests for r in self.runs)
        failed = sum(r.failed for r in self.runs)
        objectives = [r.objective for r in self.runs if r.objective is not None]
        out: dict[str, Any] = {"requests": total, "failed": failed, "objective": max(objectives, default=None),
                               "allowed": None, "burnt": None}
        if objectives and total:
            b = error_budget(max(objectives), good=total - failed, total=total)
            out["allowed"], out["burnt"] = b["allowed"], b["share"]
        return out

    def drift(self) -> dict[str, list[tuple[float, float]]]:
        """gauge -> (seconds from the soak's start, value after each run)."""
        out: dict[str, list[tuple[float, float]]] = {}
        for r in self.runs:
            for k, v in r.gauges.items():
                out.setdefault(k, []).append((r.started_at + r.seconds - self.started_at, v))
        return out

    def end_ok(self) -> bool:
        """The end against the start: True when judged and within tolerance, or when the
        target has no gauges (nothing to judge)."""
        if self.damage is None:
            return True
        return self.end_state is not None and self.end_state.verified and self.end_state.passed

    def passed(self) -> bool:
        return (bool(self.runs) and not self.flaky() and all(r.exit_code == 0 for r in self.runs)
                and not self.stopped and self.end_ok())

    def exit_code(self) -> int:
        if self.stopped and any(r.status == "interrupted" for r in self.runs):
            return 130
        if not self.runs:
            return 2
        from harness.verify import worst_exit

        class _O:  # worst_exit reads .exit_code
            def __init__(self, code):
                self.exit_code = code

        code = worst_exit([_O(r.exit_code) for r in self.runs])
        return code or (1 if self.flaky() or not self.end_ok() else 0)

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "loops": self.loops, "duration": self.duration, "shuffle": self.shuffle,
                "seed": self.seed, "started_at": self.started_at, "ended_at": self.ended_at,
                "stopped": self.stopped, "items": [str(i.path) for i in self.items],
                "runs": [dataclasses.asdict(r) for r in self.runs], "flaky": self.flaky(),
                "first_failure": dataclasses.asdict(f) if (f := self.first_failure()) else None,
                "budget": self.budget(), "end_state": dataclasses.asdict(self.end_state) if self.end_state else None,
                "start_phase": self.start_phase, "warmup_loops": self.warmup_loops, "cold_start": self.cold_start,
                "passed": self.passed()}


# -- one run -----------------------------------------------------------------------------
def randomised(exp, target, rng: random.Random | None) -> tuple[Any, dict[str, Any]]:
    """The experiment with the parameters a step leaves open picked at random, and what
    was picked. Today: a zone-loss naming a database role cuts one of the zones that hold
    that role now. Without ``rng`` nothing changes (the parameters are as written)."""
    params: dict[str, Any] = {}
    if rng is None:
        return exp, params
    steps = list(exp.method)
    for i, step in enumerate(steps):
        if step.kind == "fault" and step.fault == "zone-loss" and _role_zones(target, step.params.get("zone")):
            zones = _role_zones(target, step.params["zone"])
            zone = rng.choice(zones)
            params[f"step {i} zone"] = f"{zone} ({step.params['zone']})"
            steps[i] = dataclasses.replace(step, params={**step.params, "zone": zone})
    if params:
        exp = dataclasses.replace(exp, method=tuple(steps))
    return exp, params


def _role_zones(target, role: Any) -> list[str]:
    from harness.targets.lab.faults.zone_loss import LabZoneLoss

    roles = getattr(LabZoneLoss, "ROLES", {})
    if getattr(target, "kind", "") != "lab" or role not in roles or not target.cfg.with_db:
        return []
    from harness.lab import db

    state = db.cluster_state(target.cfg) or {}
    return sorted(db.zone_of(m["name"]) for m in state.get("members", []) if m.get("role") in roles[role])


def run_one(item: Item, ctx: dict[str, Any], target_spec: str | None, lab_dir: str | None,
            report_dir: str) -> SoakRun:
    """One item of one loop, with the usual safety (a drill runs as ``harness verify`` runs it)."""
    from harness.verify import run_item

    t0 = time.time()
    if item.kind != "experiment":
        o = run_item(item, target_spec, lab_dir, report_dir)
        return SoakRun(ctx["loop"], ctx["position"], str(item.path), item.title, o.status, o.exit_code,
                       list(o.reasons), {}, t0, time.time() - t0, o.report)
    from harness.engine.run import Run
    from harness.errors import HarnessError
    from harness.targets import resolve_target

    try:
        target = resolve_target(target_spec or item.obj.target, lab_dir)
        exp, params = randomised(item.obj, target, ctx.get("rng"))
        res = Run(exp, target, report_dir=report_dir, lock_wait=600).execute()
    except HarnessError as exc:  # the environment refused this run (not ready, lock held...): recorded
        return SoakRun(ctx["loop"], ctx["position"], str(item.path), item.title, "refused", exc.exit_code,
                       [str(exc)], {}, t0, time.time() - t0)
    run = SoakRun(ctx["loop"], ctx["position"], str(item.path), item.title, res.verdict.status,
                  res.verdict.exit_code, list(res.verdict.reasons), params, t0, time.time() - t0, res.report_path)
    for c in res.checks:
        if c.kind == "no-lasting-damage":
            run.gauges = {g["gauge"]: g["after"] for g in c.measured.get("gauges", [])}
    if res.journal_path:
        from harness.report.view import RunView

        b = RunView(json.loads(Path(res.journal_path).read_text())).budget()
        run.requests, run.failed, run.objective = int(b["requests"] or 0), int(b["failed"] or 0), b["objective"]
    return run


def damage_check(target) -> Any:
    """The target's default no-lasting-damage check, for the soak's end against its start."""
    from harness.checks.damage import KIND

    cls = target.checks().get(KIND)
    return cls(target, {}) if cls is not None and getattr(cls, "default", False) else None


def soak_dir(report_dir: str) -> Path:
    return Path(report_dir) / f"soak-{datetime.now().strftime('%Y%m%d-%H%M%S')}"

"""Abort reaction time: breach visible in the load generator's stats -> fault reverted.

Side by side in the same run, on the same lab, the same fault and the same breach:
  * the harness: abort-when evaluated on every 0.1 s load record, revert at once;
  * Chaos Toolkit's own chaosaddons.controls.safeguards polling a probe every 1 s
    (rollback strategy "always", so its rollback reverts the fault).
The fault is a zone cut (refuse) of every zone: users get errors at once. "Breach
visible" is the first load record whose 1 s window shows error_ratio > 10 %, found
the same way for both from the recorded series. Prints p50/p95 for both and the ratio.

    .venv/bin/python benchmarks/abort_reaction.py [--trials 10] [--lab-dir DIR]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, bench_lab, parser, percentile, summary  # noqa: E402

THRESHOLD = 0.10
WINDOW = 1.0


def first_breach(series, after: float) -> float | None:
    """Time of the first load record after ``after`` whose 1 s window breaches."""
    with series._lock:
        times = [t for t in series._t if t > after]
    for t in times:
        w = series.window(t - WINDOW, t)
        if w.error_ratio is not None and w.error_ratio > THRESHOLD:
            return t
    return None


HARNESS_EXP = """\
title: abort reaction (harness)
load: {{locustfile: {root}/load/api.py, users: 20, spawn-rate: 20, warmup: 2s}}
method:
{steps}
abort-when:
  - {{error_ratio: "> 10%", window: 1s}}
  - {{elapsed: "> 2m"}}
"""


def zone_steps(zones) -> str:
    lines = [f"  - {{fault: zone-loss, zone: {z}, mode: refuse, duration: 30s, concurrent: true}}" for z in zones[:-1]]
    lines.append(f"  - {{fault: zone-loss, zone: {zones[-1]}, mode: refuse, duration: 30s}}")
    return "\n".join(lines)


def harness_trial(lab, tmp: Path) -> float:
    from harness.engine.run import Run
    from harness.experiment.loader import load_experiment
    from harness.targets.lab import LabTarget

    path = tmp / "harness.yaml"
    path.write_text(HARNESS_EXP.format(root=ROOT, steps=zone_steps(lab.cfg.zones)))
    run = Run(load_experiment(path), LabTarget.open(lab.cfg.run_dir), report_dir=tmp / "reports", lock_wait=60)
    result = run.execute()
    assert result.verdict.status == "aborted", result.verdict.reasons
    reverted = max(f["reverted_at"] for f in result.faults)
    seen = first_breach(run.load.series, run.first_inject)
    return reverted - seen


# -- Chaos Toolkit safeguards -----------------------------------------------------------------
_STATE: dict = {}


def probe_error_ratio_ok() -> bool:
    """The safeguard probe: the same condition, on the same live load stats."""
    series = _STATE["series"]
    now = time.time()
    w = series.window(now - WINDOW, now)
    return not (w.error_ratio is not None and w.error_ratio > THRESHOLD)


def inject() -> None:
    for f, state in _STATE["faults"]:
        f.inject(state)
    _STATE["injected_at"] = time.time()


def revert() -> None:
    for f, state in _STATE["faults"]:
        f.revert(state)
    _STATE["reverted_at"] = time.time()


def safeguards_trial(lab, load) -> float:
    from chaoslib.run import Runner
    from chaoslib.types import Strategy

    from chaosaddons.controls import safeguards, synchronization

    from harness.targets.lab import LabTarget

    # chaosaddons keeps module-level state meant for one experiment per process:
    # give every trial a fresh guardian, as a fresh `chaos run` would have.
    safeguards.guardian = safeguards.Guardian()
    synchronization.experiment_finished.clear()
    target = LabTarget.open(lab.cfg.run_dir)
    faults = []
    for z in lab.cfg.zones:
        f = target.fault("zone-loss", {"zone": z, "mode": "refuse"})
        faults.append((f, f.prepare()))
    _STATE.update(series=load.series, faults=faults, reverted_at=None)
    mod = "abort_reaction"
    exp = {
        "title": "abort reaction (chaostoolkit safeguards)",
        "description": "same fault, same breach, safeguard probe every 1 s",
        "method": [
            {"type": "action", "name": "cut every zone", "provider": {"type": "python", "module": mod, "func": "inject"},
             "pauses": {"after": 30}},
        ],
        "rollbacks": [{"type": "action", "name": "restore zones",
                       "provider": {"type": "python", "module": mod, "func": "revert"}}],
        "controls": [{"name": "safeguard", "provider": {
            "type": "python", "module": "chaosaddons.controls.safeguards",
            "arguments": {"probes": [{"name": "error ratio ok", "type": "probe", "tolerance": True, "frequency": 1,
                                      "provider": {"type": "python", "module": mod, "func": "probe_error_ratio_ok"}}]}}}],
    }
    with Runner(Strategy.DEFAULT) as runner:
        journal = runner.run(exp, settings={"runtime": {"rollbacks": {"strategy": "always"}}}, experiment_vars={})
    assert journal["status"] == "interrupted", journal["status"]
    seen = first_breach(load.series, _STATE["injected_at"])
    return _STATE["reverted_at"] - seen


def wait_recovered(lab) -> None:
    deadline = time.time() + 60
    while time.time() < deadline and not lab.healthy():
        time.sleep(0.3)
    time.sleep(2)


def main() -> None:
    args = parser(__doc__).parse_args()
    import logging
    import tempfile

    logging.getLogger("chaostoolkit").setLevel(logging.CRITICAL + 1)

    from harness.load.generator import LoadGenerator, LoadSpec

    sys.modules.setdefault("abort_reaction", sys.modules[__name__])
    with bench_lab(args.lab_dir) as lab, tempfile.TemporaryDirectory() as tmp:
        harness_times, ctk_times = [], []
        load = LoadGenerator(LoadSpec(str(ROOT / "load/api.py"), users=20, spawn_rate=20), lab.cfg.load_host)
        for i in range(args.trials):
            wait_recovered(lab)
            harness_times.append(harness_trial(lab, Path(tmp)))
            wait_recovered(lab)
            load.start()
            time.sleep(3)
            try:
                ctk_times.append(safeguards_trial(lab, load))
            finally:
                load.stop()
                load = LoadGenerator(LoadSpec(str(ROOT / "load/api.py"), users=20, spawn_rate=20), lab.cfg.load_host)
            print(f"trial {i + 1:2d}: harness {harness_times[-1] * 1000:7.1f} ms   "
                  f"chaostoolkit safeguards {ctk_times[-1] * 1000:7.1f} ms", flush=True)
        print()
        print("abort reaction time (breach visible in load stats -> fault reverted)")
        print(f"  harness guard               {summary(harness_times)}")
        print(f"  chaostoolkit safeguards 1s  {summary(ctk_times)}")
        r50 = percentile(ctk_times, .5) / percentile(harness_times, .5)
        r95 = percentile(ctk_times, .95) / percentile(harness_times, .95)
        print(f"  ratio safeguards/harness    p50 {r50:.1f}x   p95 {r95:.1f}x   "
              f"(target: harness p95 <= 300 ms, >= 4x faster)")


if __name__ == "__main__":
    main()

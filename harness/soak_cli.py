"""``harness soak SUITE``: a suite again and again on one environment (harness.soak)."""
from __future__ import annotations

import sys

import click

from harness.errors import InvalidInput


@click.command()
@click.argument("suite", metavar="SUITE")
@click.option("--loops", type=click.IntRange(min=1), default=None, help="Run the suite this many times.")
@click.option("--duration", default=None, metavar="TIME",
              help="Loop until this much time has passed (e.g. 8h, 90m); the run under way finishes.")
@click.option("--shuffle", is_flag=True, help="Another order each loop, and random parameters where a step allows.")
@click.option("--seed", type=int, default=None, help="Seed of --shuffle (printed; replays a soak's order).")
@click.option("--warmup-loops", type=click.IntRange(min=0), default=1, show_default=True,
              help="Loops after which the start is read that the end is judged against (0: the cold lab "
                   "before the first run; with no loop after them, the cold start is used).")
@click.option("--dir", "dirs", multiple=True, type=click.Path(), metavar="DIR", envvar="HARNESS_SUITE_DIRS",
              help="Where to look for the suite's files (default experiments/, scenarios/, drills/).")
@click.option("--target", "target_spec", default=None, help="'lab' (default) or a target file.")
@click.option("--lab-dir", default=None, envvar="HARNESS_LAB_DIR", help="Run directory of the lab to use.")
@click.option("--report-dir", default="reports", show_default=True)
def soak(suite, loops, duration, shuffle, seed, warmup_loops, dirs, target_spec, lab_dir, report_dir) -> None:
    """Run the experiments and scenarios tagged SUITE again and again, and judge the loops.

    \b
    Each run has the usual safety (lock, preflight, guard, every fault reverted) and the
    default expectations (no-lasting-damage on the lab). The report (soak.md, soak.html,
    soak.json under <report-dir>/soak-<stamp>/) gives each item's verdicts over the loops
    (a verdict that changed with nothing changed is FLAKY), the first run that failed and
    why, the gauges' drift as charts, and the error budget the soak burnt:
      harness soak --loops 3 --shuffle ci
      harness soak --duration 8h --shuffle ci
    The soak's end is judged against its start: every gauge read after the warm-up loop
    (--warmup-loops; the first loop fills the pools of a cold lab) and after the last run,
    with the per-run tolerances (a slow leak no run shows fails here).
    Exit code: the worst run's (0 only when every run passed, nothing was flaky and the
    end is within tolerance of the start; 1 otherwise).
    """
    from harness import soak as engine
    from harness import verify as gate
    from harness.cli import console
    from harness.quantities import parse_duration
    from harness.report import soak as report

    if loops is None and duration is None:
        raise InvalidInput("say how long to soak: --loops N or --duration TIME (e.g. 8h)")
    try:
        seconds = parse_duration(duration) if duration is not None else None
    except (ValueError, InvalidInput) as exc:
        raise InvalidInput(f"--duration {duration!r}: {exc}") from None
    items = gate.collect(suite, tuple(dirs) or gate.DEFAULT_DIRS)
    if not items:
        raise InvalidInput(f"no experiment or drill is tagged '{suite}' in {', '.join(dirs or gate.DEFAULT_DIRS)}")
    out = engine.soak_dir(report_dir)
    runs_dir = str(out / "runs")
    s = engine.Soak(suite, items, lambda item, ctx: engine.run_one(item, ctx, target_spec, lab_dir, runs_dir),
                    loops=loops, duration=seconds, shuffle=shuffle, seed=seed, warmup_loops=warmup_loops,
                    damage=engine.damage_check(_soak_target(items, target_spec, lab_dir)))
    console.print(f"[bold]soak {suite}[/bold]: {len(items)} item(s), "
                  + (f"{loops} loop(s)" if loops else f"for {duration}")
                  + (" shuffled" if shuffle else ""))
    try:
        s.execute(progress=lambda line: console.print(line, markup=False))
    finally:
        if not s.ended_at:
            import time

            s.ended_at = time.time()
            s.stopped = s.stopped or "interrupted"
        paths = report.write(s, out)
    console.print(report.markdown(s), markup=False)
    if shuffle:
        console.print(f"seed {s.seed} (replay the order with --seed {s.seed})")
    console.print(f"report: {paths['html']}\nsummary: {paths['md']}")
    sys.exit(s.exit_code())


def _soak_target(items, target_spec, lab_dir):
    """The environment the soak runs on: --target, else the first experiment's own."""
    from harness.targets import resolve_target

    spec = target_spec or next((i.obj.target for i in items if i.kind == "experiment"), None)
    return resolve_target(spec, lab_dir)

"""``harness gameday run PLAN`` and ``harness gameday validate PLAN...`` (docs/gamedays.md)."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from harness.errors import InvalidInput


@click.group()
def gameday() -> None:
    """GameDays: scenarios run live, MTTD/MTTR scored, postmortem drafts (gamedays/*.yaml)."""


@gameday.command("run")
@click.argument("plan", type=click.Path())
@click.option("--unattended", is_flag=True,
              help="No facilitator: detected = the first delivered alert, mitigated = the users' SLOs back (CI).")
@click.option("--target", "target_spec", default=None, help="'lab' (default) or a target file.")
@click.option("--lab-dir", default=None, envvar="HARNESS_LAB_DIR", help="Run directory of the lab to use.")
@click.option("--report-dir", default="reports", show_default=True, help="Where the GameDay's directory goes.")
@click.option("--only", "only", multiple=True, metavar="NAME", help="Run only these scenarios (file stem), in order.")
@click.option("--wait", "lock_wait", default=0.0, type=float, metavar="SECONDS",
              help="Wait this long for another run's lock instead of refusing at once.")
def run_cmd(plan, unattended, target_spec, lab_dir, report_dir, only, lock_wait) -> None:
    """Run the GameDay PLAN: each scenario under load, live console, scorecard, postmortems.

    \b
    Keys: d detected, a acknowledged, e escalated, m mitigated, r resolved,
          n note (type, Enter), q emergency stop (reverts every fault; Ctrl-C too).
    Exit 0 when every success criterion held, 1 when one did not, 130 on a stop.
    """
    from harness.gameday.console import GameDayConsole
    from harness.gameday.plan import load_gameday
    from harness.gameday.run import GameDayRun
    from harness.targets import resolve_target

    gd = load_gameday(plan)
    if only:
        known = {s.experiment.name for s in gd.scenarios}
        missing = [n for n in only if n not in known]
        if missing:
            raise InvalidInput(f"--only {', '.join(missing)}: not in {plan} (scenarios: {', '.join(sorted(known))})")
        gd.scenarios = [s for n in only for s in gd.scenarios if s.experiment.name == n]
    target = resolve_target(target_spec or gd.scenarios[0].experiment.target, lab_dir)
    display = GameDayConsole()
    if not unattended and not display.interactive:
        from harness.cli import err

        err.print("[yellow]no terminal to read the facilitator's keys from: nothing the team does can be recorded "
                  "(MTTD/MTTR will be 'not recorded'); use --unattended to take them from alerts and SLOs[/yellow]")
    record = GameDayRun(gd, target, report_dir=report_dir, unattended=unattended, display=display,
                        lock_wait=lock_wait).execute()
    if record["stopped"]:
        sys.exit(130)
    sys.exit(0 if record["scorecard"]["passed"] else 1)


@gameday.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def validate_cmd(paths) -> None:
    """Check GameDay plans (and the scenarios they name): file:line:col, exit 2 if any."""
    from harness.cli import console
    from harness.gameday.plan import load_gameday

    problems = []
    for p in paths:
        files = sorted(Path(p).glob("*.yaml")) if Path(p).is_dir() else [Path(p)]
        for f in files:
            try:
                g = load_gameday(f)
                console.print(f"[green]ok[/green]  {f}  {g.title} ({len(g.scenarios)} scenarios)")
            except InvalidInput as exc:
                problems.extend(exc.problems)
    if problems:
        raise InvalidInput(problems)

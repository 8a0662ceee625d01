"""``harness verify --suite TAG``: the command of the pre-release gate (harness.verify)."""
from __future__ import annotations

import sys
import time

import click
from rich.table import Table

from harness.errors import InvalidInput


@click.command()
@click.option("--suite", required=True, metavar="TAG", help="Run every experiment, scenario and drill tagged TAG.")
@click.option("--dir", "dirs", multiple=True, type=click.Path(), metavar="DIR", envvar="HARNESS_SUITE_DIRS",
              help="Where to look (repeatable, or $HARNESS_SUITE_DIRS separated by spaces; default "
                   "experiments/, scenarios/, drills/).")
@click.option("--target", "target_spec", default=None, help="'lab' (default) or a target file, for the experiments.")
@click.option("--lab-dir", default=None, envvar="HARNESS_LAB_DIR", help="Run directory of the lab to use.")
@click.option("--report-dir", default="reports", show_default=True)
@click.option("--summary", "summary_path", default=None, metavar="FILE",
              help="Write the Markdown summary here too (it always goes to $GITHUB_STEP_SUMMARY when set).")
@click.option("--junitxml", "junit_path", default=None, metavar="FILE",
              help="Write a JUnit XML report (one test case per item, its numbers as properties) for the "
                   "CI system's test view.")
def verify(suite, dirs, target_spec, lab_dir, report_dir, summary_path, junit_path) -> None:
    """The pre-release gate: run the suite's experiments and drills, one after another.

    \b
    Every file under the directories is validated first (one invalid file: exit 2,
    nothing runs). Each item then runs with the usual safety; the command ends with a
    one-screen summary, the Markdown summary for the CI job page, and the worst exit
    code (0 only if every item passed), naming what failed:
      harness verify --suite pre-release --summary reports/pre-release.md
    """
    from harness import verify as gate
    from harness.cli import console
    from harness.console import ConsoleProgress

    items = gate.collect(suite, tuple(dirs) or gate.DEFAULT_DIRS)
    if not items:
        raise InvalidInput(f"no experiment or drill is tagged '{suite}' in {', '.join(dirs or gate.DEFAULT_DIRS)}")
    console.print(f"[bold]suite {suite}[/bold]: {len(items)} item(s)")
    outcomes = []
    for n, item in enumerate(items, 1):
        console.print(f"[bold]({n}/{len(items)}) {item.title}[/bold]  [dim]{item.path}[/dim]")
        began = time.monotonic()
        outcome = gate.run_item(item, target_spec, lab_dir, report_dir, ConsoleProgress(console, True))
        outcome.seconds = time.monotonic() - began
        outcomes.append(outcome)
        colour = "green" if outcome.exit_code == 0 else "red"
        console.print(f"  [{colour}]{outcome.status}[/{colour}] {outcome.numbers}")
        if outcome.exit_code == 130:
            break
    table = Table("item", "verdict", "numbers", "report", title=f"suite {suite}")
    for o in outcomes:
        colour = "green" if o.exit_code == 0 else "red"
        table.add_row(str(o.item.path), f"[{colour}]{o.status}[/{colour}]", o.numbers, o.report or "")
    console.print(table)
    failed = [o for o in outcomes if o.exit_code != 0]
    for o in failed:
        console.print(f"[red]FAILED[/red] {o.item.path}: " + "; ".join(o.reasons[:3]))
    for path in gate.write_summary(gate.markdown(suite, outcomes), summary_path):
        console.print(f"[dim]summary: {path}[/dim]")
    if junit_path:
        gate.write_junit(suite, outcomes, junit_path)
        console.print(f"[dim]junit: {junit_path}[/dim]")
    sys.exit(gate.worst_exit(outcomes))

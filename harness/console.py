"""What a person sees while a run goes: phase, time, live SLIs, active faults; then
a verdict table. Only the CLI prints; the engine reports through ``progress``."""
from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.engine.results import RunResult


class ConsoleProgress:
    def __init__(self, console: Console, quiet: bool = False):
        self.console = console
        self.quiet = quiet
        self.last_tick = 0.0
        self.live = console.is_terminal

    def __call__(self, event: str, **data: Any) -> None:
        if self.quiet:
            return
        run = data.get("run")
        if event == "event":
            kind, text = data["kind"], data["text"]
            t = f"+{time.time() - run.clock.started_at:5.1f}s" if run else ""
            style = {"inject": "bold yellow", "revert": "green", "abort": "bold red", "phase": "bold cyan",
                     "interrupted": "bold red", "error": "bold red", "recovered": "green",
                     "not-recovered": "bold red", "alert": "magenta", "notification": "magenta"}.get(kind, "")
            if kind in ("slo", "check"):
                style = "green" if data.get("passed") else "bold red"
            label = {"phase": "phase", "slo": "SLO", "check": "check"}.get(kind, kind)
            self.console.print(f"[dim]{t}[/dim] [{style}]{label:>9}[/{style}]  {text}" if style else f"[dim]{t}[/dim] {label:>9}  {text}",
                               highlight=False)
        elif event == "tick" and run is not None:
            now = time.time()
            if now - self.last_tick < (1.0 if self.live else 5.0):
                return
            self.last_tick = now
            self.console.print(self._tick_line(run), highlight=False)

    @staticmethod
    def _tick_line(run) -> str:
        now = time.time()
        parts = [f"[dim]+{now - run.clock.started_at:5.1f}s[/dim] [cyan]{run.phase:>9}[/cyan]"]
        if run.load:
            w = run.load.series.window(now - 1.0, now)
            av = "-" if w.availability is None else f"{w.availability * 100:.2f}%"
            p99 = w.quantile(0.99)
            p99s = "-" if p99 is None else f"{p99 * 1000:.0f}ms"
            parts.append(f" users: {w.requests:4d} req/s  avail {av}  p99 {p99s}")
            if w.failed:
                parts.append(f"  [red]{w.failed} failed[/red]")
        snap = run.target_samples[-1] if run.target_samples else {}
        if "replicas_ready" in snap:
            parts.append(f"  replicas {snap['replicas_ready']}/{snap['replicas_desired']}")
        if run.journal.live:
            parts.append(f"  [yellow]faults active: {len(run.journal.live)}[/yellow]")
        return "".join(parts)


def verdict_table(console: Console, result: RunResult) -> None:
    v = result.verdict
    colour = {"passed": "green", "failed": "red", "aborted": "red", "not-steady": "yellow",
              "interrupted": "red", "error": "red"}[v.status]
    console.print()
    console.print(f"[bold {colour}]{v.status.upper()}[/bold {colour}]  {result.title}  "
                  f"[dim]({result.ended_at - result.started_at:.0f}s)[/dim]")
    for reason in v.reasons:
        console.print(f"  [{colour}]- {reason}[/{colour}]", highlight=False)
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("phase")
    table.add_column("check")
    table.add_column("observed", justify="right")
    table.add_column("result")
    for r in result.slo_results:
        table.add_row(r.phase, r.label, r.rendered, "[green]held[/green]" if r.passed else "[red]BROKEN[/red]")
    for c in result.checks:
        table.add_row("expect", c.kind, "", ("[green]met[/green] " if c.passed else "[red]NOT MET[/red] ") + c.summary)
    if result.recovery and result.recovery.get("seconds") is not None:
        table.add_row("recovery", f"steady state back within {result.recovery['within']:g}s",
                      f"{result.recovery['seconds']:.1f}s",
                      "[green]ok[/green]" if result.recovery["passed"] else "[red]too slow[/red]")
    if result.abort:
        table.add_row("abort", result.abort["condition"], str(result.abort.get("observed")), "[red]tripped[/red]")
    if table.row_count:
        console.print(table)
    if result.faults:
        for f in result.faults:
            state = "reverted" if f.get("reverted_at") else "[red]NOT REVERTED (run `harness cleanup`)[/red]"
            console.print(f"  fault: {f['description']}: {state}", highlight=False)
    if result.report_path:
        console.print(f"  report: {result.report_path}")
    if result.journal_path:
        console.print(f"  journal: {result.journal_path}")


def stderr_console() -> Console:
    return Console(file=sys.stderr)

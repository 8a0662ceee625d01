"""``harness drill ...`` and ``harness backups``."""
from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from harness.errors import InvalidInput


def _consoles():
    from harness.cli import console, err

    return console, err


class DrillProgress:
    """One line per step and per check while the drill goes."""

    def __init__(self, console, quiet: bool = False):
        self.console = console
        self.quiet = quiet

    def __call__(self, event: str, **data: Any) -> None:
        if self.quiet:
            return
        run = data.get("run")
        t0 = (run.t0 or time.time()) if run else time.time()
        stamp = f"[dim]+{time.time() - t0:6.1f}s[/dim]" if run and run.t0 else "[dim]        [/dim]"
        if event == "phase":
            self.console.print(f"{stamp} [bold cyan]{'phase':>9}[/bold cyan]  {data['name']}", highlight=False)
        elif event == "step":
            st = data["step"]
            style = "green" if st.ok else "bold red"
            self.console.print(f"{stamp} [{style}]{'step':>9}[/{style}]  {st.name}: "
                               f"{st.seconds or 0:.2f}s  [dim]{st.detail}[/dim]", highlight=False)
        elif event == "event":
            kind, text = data["kind"], data["text"]
            if kind == "check":
                style = "green" if data.get("passed") else "bold red"
            else:
                style = {"interrupted": "bold red", "sabotage": "yellow"}.get(kind, "")
            label = kind if kind != "check" else "check"
            self.console.print(f"{stamp} [{style or 'default'}]{label:>9}[/{style or 'default'}]  {text}",
                               highlight=False)


def summary_table(console, result) -> None:
    from rich.table import Table

    from harness.quantities import format_duration

    j = result.journal
    t = Table(title="timeline (seed 004's DR steps)", title_justify="left")
    t.add_column("step")
    t.add_column("at", justify="right")
    t.add_column("took", justify="right")
    t.add_column("")
    t.add_column("detail", overflow="fold")
    for s in j["steps"]:
        ok = "[green]ok[/green]" if s["ok"] else "[red]FAILED[/red]"
        t.add_row(s["label"], f"+{s['offset']:.2f}s", f"{s['seconds']:.2f}s" if s["seconds"] is not None else "—",
                  ok, s["detail"][:300])
    console.print(t)
    c = Table(title="checks", title_justify="left")
    c.add_column("")
    c.add_column("check")
    c.add_column("detail", overflow="fold")
    for ch in j["checks"]:
        c.add_row("[green]ok[/green]" if ch["passed"] else "[red]FAILED[/red]", ch["name"], ch["detail"][:400])
    console.print(c)
    rto, rpo = j["rto"], j["rpo"]
    rto_s = format_duration(rto["seconds"]) if rto.get("seconds") is not None else rto.get("detail", "not reached")
    rpo_s = format_duration(rpo["seconds"]) if rpo.get("seconds") is not None else "not measured"
    console.print(f"[bold]RTO[/bold] {rto_s}  (target {rto.get('target_text') or '—'}, {rto.get('target_source', '')})",
                  highlight=False)
    console.print(f"[bold]RPO[/bold] {rpo_s}  (target {rpo.get('target_text') or '—'}, {rpo.get('target_source', '')})",
                  highlight=False)
    colour = {"passed": "green"}.get(result.status, "red")
    console.print(f"[bold {colour}]drill {result.status.upper()}[/bold {colour}]"
                  + "".join(f"\n  - {r}" for r in result.reasons), highlight=False)
    if result.report_path:
        console.print(f"report: {result.report_path}", highlight=False)
    console.print(f"journal: {result.journal_path}", highlight=False)


def result_json(result) -> dict[str, Any]:
    j = result.journal
    return {"run_id": result.run_id, "drill": j["drill"]["path"], "status": result.status,
            "exit_code": result.exit_code, "reasons": result.reasons,
            "rto_seconds": j["rto"].get("seconds"), "rto_target": j["rto"].get("target"),
            "rpo_seconds": j["rpo"].get("seconds"), "rpo_target": j["rpo"].get("target"),
            "backup": (j.get("backup") or {}).get("label"), "journal": result.journal_path,
            "report": result.report_path,
            "steps": {s["name"]: s["seconds"] for s in j["steps"]}}


@click.group()
def drill() -> None:
    """Restore drills: restore a backup, check its integrity, measure RTO/RPO."""


@drill.command("run")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--lab-dir", default=None, envvar="HARNESS_LAB_DIR", help="Run directory of the lab.")
@click.option("--report-dir", default="reports", show_default=True)
@click.option("--random-backup", is_flag=True,
              help="Restore a backup chosen uniformly at random among those in --window (seed 004's weekly drill).")
@click.option("--window", default=None, metavar="WINDOW", help="Only backups that finished within this (7d, 24h).")
@click.option("--type", "rtype", type=click.Choice(["default", "time"]), default="default",
              help="time: point-in-time restore to --target.")
@click.option("--target", "target_time", default=None, metavar="TIME",
              help="Point in time for --type=time: ISO 8601 (2026-12-01T10:00:00Z) or -30s (before the drill).")
@click.option("--rto", default=None, metavar="DURATION", help="Override the RTO target (e.g. 30m).")
@click.option("--rpo", default=None, metavar="DURATION", help="Override the RPO target (e.g. 5m).")
@click.option("--seed", type=int, default=None, help="Seed for --random-backup (reproducible choice).")
@click.option("--wait", "lock_wait", default=0.0, type=float, metavar="SECONDS",
              help="Wait this long for a running experiment or drill instead of refusing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary on stdout.")
@click.option("--quiet", "-q", is_flag=True)
def run_cmd(files, lab_dir, report_dir, random_backup, window, rtype, target_time, rto, rpo, seed, lock_wait,
            as_json, quiet) -> None:
    """Run drill FILES: restore, check, measure RTO and RPO against the plan.

    \b
    Exit codes: 0 passed, 1 failed, 2 invalid input, 3 environment not ready,
    130 interrupted (the scratch environment is removed in every case).
    """
    from harness.drills.loader import load_drill, parse_point, parse_window
    from harness.drills.run import DrillRun
    from harness.errors import Problem
    from harness.quantities import parse_duration

    console, err = _consoles()
    out = err if as_json else console
    problems: list[Problem] = []
    drills = []
    for f in files:
        try:
            drills.append(load_drill(f))
        except InvalidInput as exc:
            problems.extend(exc.problems or [Problem(f, 0, 0, str(exc))])
    try:
        win = parse_window(window) if window else None
        rto_s = parse_duration(rto) if rto else None
        rpo_s = parse_duration(rpo) if rpo else None
        if rtype == "time":
            if not target_time:
                raise ValueError("--type=time needs --target TIME")
            parse_point(target_time, time.time())
        elif target_time:
            raise ValueError("--target needs --type=time")
    except ValueError as exc:
        problems.append(Problem("<command line>", 0, 0, str(exc)))
    if problems:
        raise InvalidInput(problems)
    worst = 0
    summaries = []
    for d in drills:
        if not quiet:
            out.print(f"[bold]{d.title}[/bold]  [dim]{d.path} ({d.driver})[/dim]", highlight=False)
        r = DrillRun(d, lab_dir=lab_dir, report_dir=report_dir, progress=DrillProgress(out, quiet),
                     random_backup=random_backup, window=win, at=target_time if rtype == "time" else None,
                     rto=rto_s, rpo=rpo_s, lock_wait=lock_wait, seed=seed).execute()
        summary_table(out, r)
        summaries.append(result_json(r))
        worst = r.exit_code if worst == 0 or r.exit_code == 130 else worst
        if r.exit_code == 130:
            break
    if as_json:
        print(json.dumps(summaries if len(summaries) > 1 else summaries[0], indent=2))
    sys.exit(worst)


@drill.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def validate_cmd(paths) -> None:
    """Check drill files (or folders of them) without running anything: file:line:col, exit 2."""
    from harness.drills.loader import load_drills

    console, err = _consoles()
    drills, problems = load_drills(list(paths))
    for d in drills:
        console.print(f"[green]ok[/green] {d.path}: {d.title} ({d.driver})", highlight=False)
    if problems:
        raise InvalidInput(problems)
    if not drills:
        raise InvalidInput("no drill files found in " + ", ".join(paths))


@drill.command("cleanup")
def cleanup_cmd() -> None:
    """Remove scratch instances, processes and directories a killed drill left behind."""
    from harness.drills.scratch import cleanup_leftovers

    console, _ = _consoles()
    done = cleanup_leftovers()
    for line in done:
        console.print(line, highlight=False)
    if not done:
        console.print("nothing left behind by a drill", highlight=False)


@click.command()
@click.option("--lab-dir", default=None, envvar="HARNESS_LAB_DIR", help="Run directory of the lab.")
@click.option("--config", "config", default=None, help="A pgBackRest configuration other than the lab's.")
@click.option("--stanza", default=None)
@click.option("--plan", "plan_path", default=None, help="Plan whose backup schedule judges the ages.")
@click.option("--json", "as_json", is_flag=True)
def backups(lab_dir, config, stanza, plan_path, as_json) -> None:
    """The backups that exist, their ages, and freshness against the plan's schedule.

    Exit 0 when the newest full backup is as fresh as the plan's schedule allows, 1 when
    it is too old or missing, 3 when the repository cannot be read.
    """
    from rich.table import Table

    from harness.drills.backups import Repository, _dur, backup_freshness, list_backups

    console, _ = _consoles()
    cfg = None
    policy = None
    if config is None or plan_path is None:
        from harness.drills.run import lab_config

        cfg = lab_config(lab_dir)
    repo = Repository(config, stanza or "lab") if config else Repository.of_lab(cfg)
    if stanza:
        repo = Repository(repo.config, stanza)
    if plan_path:
        from harness.plan.loader import load_plan

        policy = load_plan(plan_path).backup
    elif cfg is not None:
        from harness.lab.alerting import load_lab_plan

        policy = load_lab_plan(cfg).backup
    items = list_backups(repo)
    fresh = backup_freshness(items, policy)
    now = time.time()
    incr_every = getattr(getattr(policy, "incremental_every", None), "value", None) if policy else None
    if as_json:
        print(json.dumps({"repository": repo.config, "stanza": repo.stanza,
                          "backups": [{**b.to_dict(), "age": now - b.stop} for b in items],
                          "freshness": fresh.to_dict(), "incremental_every": incr_every}, indent=2))
        sys.exit(0 if fresh.ok else 1)
    t = Table(title=f"backups in {repo.config} (stanza {repo.stanza})", title_justify="left")
    for col in ("label", "type", "finished", "age", "took", "size", "against the plan"):
        t.add_column(col, justify="right" if col in ("age", "took", "size") else "left")
    newest_full = fresh.newest_full.label if fresh.newest_full else None
    for b in reversed(items):
        if b.type == "full":
            note = ("newest full: " + ("fresh" if fresh.ok else "TOO OLD")) if b.label == newest_full else ""
        else:
            note = "" if incr_every is None else (f"{'within' if now - b.stop <= incr_every else 'older than'} "
                                                  f"the {_dur(incr_every)} incremental interval")
        t.add_row(b.label, b.type, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(b.stop)), _dur(now - b.stop),
                  _dur(b.stop - b.start), f"{(b.size or 0) / 1e6:.1f} MB", note)
    console.print(t)
    colour = "green" if fresh.ok else "red"
    console.print(f"[{colour}]{fresh.reason}[/{colour}]", highlight=False)
    sys.exit(0 if fresh.ok else 1)

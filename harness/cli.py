"""The ``harness`` command. Only this module prints and chooses exit codes
(the table: :data:`harness.errors.EXIT_CODES`)."""
from __future__ import annotations

import faulthandler
import json
import logging
import os
import signal
import sys
import traceback
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from harness.errors import EXIT_CODES, HarnessError, InvalidInput

def _console(stderr: bool = False) -> Console:
    c = Console(stderr=stderr, highlight=False)
    if not c.is_terminal:  # CI logs: wide lines rather than wrapped tables
        c = Console(stderr=stderr, highlight=False, width=160)
    return c


console = _console()
err = _console(stderr=True)

EPILOG = """\b
Exit codes:
""" + "\n".join(f"  {k:>3}  {v}" for k, v in EXIT_CODES.items())


def _setup_logging(debug: bool) -> None:
    level = logging.DEBUG if debug else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("chaostoolkit", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.ERROR)


class _Harness(click.Group):
    """The command group, plus groups that live beside their packages (plans, drills),
    imported only when used: `harness run` never pays for the plan or drill modules."""

    LAZY = {"plan": ("harness.plan.cli", "plan"), "drill": ("harness.drills.cli", "drill"),
            "backups": ("harness.drills.cli", "backups"), "verify": ("harness.verify_cli", "verify"),
            "gameday": ("harness.gameday.cli", "gameday"), "soak": ("harness.soak_cli", "soak")}

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.LAZY))

    def get_command(self, ctx, name):
        cmd = super().get_command(ctx, name)
        if cmd is None and name in self.LAZY:
            import importlib

            module, attr = self.LAZY[name]
            cmd = getattr(importlib.import_module(module), attr, None)
        return cmd


@click.group(cls=_Harness, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Verbose logs (and tracebacks for internal errors).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Resilience harness: chaos experiments under load, judged by SLOs.

    \b
    Quick tour:
      harness lab up                         start the local lab (real processes)
      harness run experiments/pod-kill.yaml  run an experiment under Locust load
      harness validate experiments/*.yaml    check files without running anything
      harness faults                         the fault catalogue and its parameters
      harness cleanup                        revert faults left by a killed run
      harness lab down                       remove everything the lab created
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    _setup_logging(debug)


# -- run -----------------------------------------------------------------------------
@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--target", "target_spec", default=None,
              help="'lab' (default) or a target file (e.g. targets/staging.yaml). Overrides the experiment's target.")
@click.option("--lab-dir", default=None, envvar="HARNESS_LAB_DIR", help="Run directory of the lab to use.")
@click.option("--report-dir", default="reports", show_default=True, help="Where journals and reports go.")
@click.option("--quiet", "-q", is_flag=True, help="Only the verdict.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary on stdout.")
@click.option("--dry-run", is_flag=True, help="Validate and check the target; inject nothing.")
@click.option("--wait", "lock_wait", default=0.0, metavar="SECONDS",
              help="If another experiment is running, wait this long for it instead of refusing.")
@click.option("--force", "force", default=None, metavar="REASON",
              help="Run even if the plan's chaos policy refuses it (window, precondition); the reason goes into "
                   "the journal.")
def run(files, target_spec, lab_dir, report_dir, quiet, as_json, dry_run, lock_wait=0.0, force=None) -> None:
    """Run experiment FILES one after another (never at once) and judge them.

    \b
    Each run: preflight (lock, leftover faults, target health), Locust load and
    warm-up, steady state checked, faults injected while abort conditions are
    watched, faults reverted, recovery measured, steady state checked again.
    Ctrl-C reverts every fault before exiting.
    """
    from harness.console import ConsoleProgress, verdict_table
    from harness.engine.run import Run
    from harness.experiment.loader import load_experiment
    from harness.targets import resolve_target

    experiments = []
    problems = []
    for f in files:
        try:
            experiments.append(load_experiment(f))
        except InvalidInput as exc:
            problems.append(exc)
    if problems:
        raise InvalidInput([p for exc in problems for p in exc.problems] or str(problems[0]))
    worst = 0
    summaries = []
    out = err if as_json else console
    for exp in experiments:
        target = resolve_target(target_spec or exp.target, lab_dir)
        if not quiet:
            out.print(f"[bold]{exp.title}[/bold]  [dim]{exp.path} on {target.kind}[/dim]")
        one = Run(exp, target, report_dir=report_dir, progress=ConsoleProgress(out, quiet), dry_run=dry_run,
                  lock_wait=lock_wait)
        one.force_reason = force  # harness.plan.policy
        result = one.execute()
        verdict_table(out, result)
        summaries.append({
            "experiment": result.experiment, "title": result.title, "verdict": result.verdict.status,
            "reasons": result.verdict.reasons, "journal": result.journal_path, "report": result.report_path,
            "recovery_seconds": (result.recovery or {}).get("seconds"),
            "slos": [{"phase": r.phase, "slo": r.label, "observed": r.observed, "passed": r.passed} for r in result.slo_results],
            "checks": [{"kind": c.kind, "passed": c.passed, "summary": c.summary, "measured": c.measured} for c in result.checks],
            "abort": result.abort,
        })
        code = result.verdict.exit_code
        worst = code if worst == 0 else worst
        if result.verdict.status == "interrupted":
            break
    if as_json:
        print(json.dumps(summaries if len(summaries) > 1 else summaries[0], indent=1, default=str))
    sys.exit(worst)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--target", "target_spec", default=None,
              help="Also check every step, expectation and data source against this target ('lab' or a "
                   "target file): a link, zone or mode it does not have is an error too.")
@click.option("--lab-dir", default=None, envvar="HARNESS_LAB_DIR", help="Run directory of the lab to check against.")
def validate(files, target_spec, lab_dir) -> None:
    """Check experiment FILES: every problem as file:line:col, exit 2 if any.

    
    Without --target, the files are checked against the format and the catalogue.
    With --target, each is also bound to that target (nothing is started or touched):
      harness validate --target lab experiments/
      harness validate --target targets/k8s-testbed.yaml experiments/k8s/
    """
    from harness.engine.binding import bind
    from harness.experiment.loader import validate_files

    paths = []
    for f in files:
        p = Path(f)
        paths += sorted(p.rglob("*.y*ml")) + sorted(p.rglob("*.json")) if p.is_dir() else [p]
    experiments, problems = validate_files(paths)
    for e in experiments:
        if target_spec or e.target:
            try:
                bind(e, _validation_target(target_spec or e.target, lab_dir))
            except InvalidInput as exc:
                problems.extend(exc.problems or [])
                continue
        console.print(f"[green]ok[/green]  {e.path}  {e.title}" + (f"  [dim]on {target_spec}[/dim]" if target_spec else ""))
    if problems:
        raise InvalidInput(problems)


def _validation_target(spec: str | None, lab_dir: str | None):
    """The target to validate against: the lab may be down (its default shape is used)."""
    from harness.targets import resolve_target
    from harness.targets.lab import LabTarget

    if spec in (None, "", "lab"):
        return LabTarget.planned(lab_dir)
    return resolve_target(spec, lab_dir)


@cli.command(name="list")
@click.argument("directory", default="experiments", type=click.Path())
def list_(directory) -> None:
    """List the experiments in DIRECTORY with their faults and objectives."""
    from harness.experiment.loader import validate_files

    paths = sorted(Path(directory).rglob("*.yaml")) + sorted(Path(directory).rglob("*.json"))
    experiments, problems = validate_files(paths)
    table = Table("file", "title", "faults", "target")
    for e in experiments:
        table.add_row(str(e.path), e.title, ", ".join(s.fault for s in e.faults) or "(Chaos Toolkit)", e.target or "lab")
    console.print(table)
    for p in problems:
        err.print(f"[red]{p}[/red]")


@cli.command()
def faults() -> None:
    """The fault catalogue: kinds, parameters, what each verifies, and which target
    implements it (plugins included)."""
    from harness.catalogue import check_kinds, fault_kinds
    from harness.targets import registry

    kinds = registry.targets()
    impl = {(t, w): registry.implementations(t, w) for t in kinds for w in ("fault", "check")}
    for title, cat, what in (("Faults (method: - fault: KIND ...)", fault_kinds(), "fault"),
                             ("Expectations (expect: - KIND: {...})", check_kinds(), "check")):
        table = Table("kind", *kinds, "parameters", "what", title=title, show_lines=True)
        for k in cat.values():
            params = ", ".join(f"{p}{'*' if p in k.required else ''}" for p in k.params)
            where = []
            for t in kinds:
                cls = impl[(t, what)].get(k.name)
                builtin = cls is not None and cls.__module__.startswith(f"harness.targets.{t}.")
                where.append("[green]yes[/green]" if builtin else f"[cyan]{cls.__module__}[/cyan]" if cls else "-")
            table.add_row(k.name, *where, params, k.summary)
        console.print(table)
    console.print("[dim]* required; a module name: implemented by a plugin[/dim]")
    for name, error in registry.PLUGIN_ERRORS.items():
        err.print(f"[red]plugin {name} could not be loaded:[/red] {error}")


@cli.command("load-worker")
@click.option("--master", required=True, metavar="HOST:PORT",
              help="The master: an experiment run with load.expect-workers and load.master-bind.")
@click.option("--locustfile", required=True, type=click.Path(exists=True),
              help="The same locustfile as the run's (each load machine needs its own copy).")
@click.option("--host", default="http://localhost", show_default=True,
              help="Only until the first spawn: Locust's master sends the run's host (load.host, or the "
                   "target's) with every spawn, and the workers use that one.")
def load_worker(master, locustfile, host) -> None:
    """Join a run's load as a Locust worker on another machine (distributed mode).

    \b
    On the harness machine the experiment says, e.g.:
      load: {locustfile: load/api.py, users: 500, expect-workers: 4,
             master-bind: 0.0.0.0:5557, host: http://svc.example:8080}
    and on each load machine:
      harness load-worker --master harness-host:5557 --locustfile load/api.py

    The run waits up to 60 s for its workers, then starts with those that joined. A worker
    that falls silent while a fault is active (its machine lost, its process killed)
    makes the guard abort the run and revert the fault (exit 4): a partial view of the
    users is not a view. See docs/load-workers.md.
    """
    os.execv(sys.executable, [sys.executable, "-m", "harness.load.child", "--worker", "--master", master,
                              "--locustfile", locustfile, "--host", host])


@cli.command()
def schema() -> None:
    """Print the experiment JSON Schema."""
    from harness.experiment.schema import experiment_schema

    print(json.dumps(experiment_schema(), indent=1))


# -- cleanup / stop --------------------------------------------------------------------
@cli.command()
@click.option("--forget", is_flag=True,
              help="Drop the pending faults from the journal WITHOUT reverting them (after you have "
                   "checked their target by hand, e.g. a cluster that no longer exists).")
def cleanup(forget: bool) -> None:
    """Revert every fault a killed or crashed run left behind.

    The fault journal (under the state directory) lists every fault that was injected
    and not yet reverted; this reverts each on its target and verifies the revert.
    A fault whose target is gone (the lab was taken down, a local test-bed cluster
    deleted) is dropped with a note. Exit code 5 if something could not be reverted.
    """
    from harness.engine.journal import forget as forget_all, pending, recover
    from harness.engine.lock import RunLock

    lock = RunLock()
    holder = lock.holder_pid()
    try:
        lock.acquire("cleanup")
    except HarnessError:
        raise HarnessError(f"a run is in progress (pid {holder}); stop it with `harness stop` first") from None
    try:
        left = pending()
        if not left:
            console.print("nothing to clean up: no fault is pending")
            return
        if forget:
            for e in forget_all(lambda m: console.print(m)):
                console.print(f"[yellow]forgotten, not reverted[/yellow] {e.description}")
            return
        reverted, errors = recover(lambda m: console.print(m))
        for e in reverted:
            console.print(f"[green]reverted[/green] {e.description}")
        if errors:
            from harness.errors import FaultError

            raise FaultError("could not revert: " + "; ".join(errors)
                             + " (fix the target and run `harness cleanup` again; if the target is gone "
                             "for good, check it by hand and run `harness cleanup --forget`)")
    finally:
        lock.release()


@cli.command()
def stop() -> None:
    """Emergency stop: interrupt the running experiment (it reverts every fault)."""
    from harness.engine.lock import RunLock

    pid = RunLock().holder_pid()
    if not pid:
        console.print("no experiment is running")
        return
    os.kill(pid, signal.SIGINT)
    console.print(f"sent the stop signal to run pid {pid}; it reverts its faults and exits")


# -- report ------------------------------------------------------------------------------
@cli.command()
@click.argument("journal", type=click.Path(exists=True))
def report(journal) -> None:
    """Rebuild the HTML report (and the index of reports/) from a run's JOURNAL."""
    from harness.report import render

    path = Path(journal)
    if path.is_dir():
        path = path / "journal.json"
    data = json.loads(path.read_text())
    out = render.write_reports(data, path.parent)
    console.print(f"report: {out}")


# -- lab ------------------------------------------------------------------------------
@cli.group()
def lab() -> None:
    """The local lab: zones, api replicas, HAProxy, PostgreSQL/Patroni, Prometheus..."""


def _lab_options(f):
    f = click.option("--prefix", default="rh", show_default=True, envvar="HARNESS_LAB_PREFIX",
                     help="Names of namespaces/links/run dir.")(f)
    f = click.option("--run-dir", default=None, envvar="HARNESS_LAB_DIR", help="Where logs, data and state live.")(f)
    return f


@lab.command("up")
@_lab_options
@click.option("--replicas", default=3, show_default=True, help="api replicas at start (the autoscaler's minimum).")
@click.option("--max-replicas", default=6, show_default=True)
@click.option("--zones", default="a,b,c", show_default=True, envvar="HARNESS_LAB_ZONES")
@click.option("--port-base", default=17000, show_default=True, envvar="HARNESS_LAB_PORT_BASE",
              help="Every lab port is this + an offset.")
@click.option("--subnet", default="10.77.0", show_default=True, envvar="HARNESS_LAB_SUBNET",
              help="/24 of the lab bridge (first three octets).")
@click.option("--no-db", is_flag=True, envvar="HARNESS_LAB_NO_DB",
              help="Without PostgreSQL/Patroni/etcd (faster; in-memory service).")
@click.option("--async-replication", is_flag=True, help="Asynchronous DB replication (RPO > 0) instead of synchronous.")
def lab_up(prefix, run_dir, replicas, max_replicas, zones, port_base, subnet, no_db, async_replication) -> None:
    """Start the lab (idempotent) and wait until every component is healthy."""
    from harness.lab.config import LabConfig
    from harness.lab.lab import Lab

    cfg = LabConfig(prefix=prefix, subnet=subnet, zones=zones.split(","), replicas=replicas,
                    max_replicas=max(replicas, max_replicas), port_base=port_base, with_db=not no_db,
                    sync_replication=not async_replication, run_dir=run_dir or "")
    lab_ = Lab(cfg)
    with console.status("starting the lab...") as status:
        took = lab_.up(lambda m: status.update(m))
    console.print(f"[green]lab up[/green] in {took:.1f}s  (run dir {cfg.run_dir})")
    _print_status(lab_)


@lab.command("status")
@_lab_options
@click.option("--json", "as_json", is_flag=True)
def lab_status(prefix, run_dir, as_json) -> None:
    """Every component with its address and health (exit 3 if any is unhealthy)."""
    from harness.errors import EnvironmentNotReady
    from harness.lab.config import default_run_dir
    from harness.lab.lab import Lab

    lab_ = Lab.open(run_dir or default_run_dir(prefix))
    if as_json:
        print(json.dumps([h.__dict__ for h in lab_.status()], indent=1))
        return
    if not _print_status(lab_):
        raise EnvironmentNotReady("some lab components are unhealthy")


def _print_status(lab_) -> bool:
    table = Table("component", "address", "health", "detail")
    ok = True
    for h in lab_.status():
        ok &= h.ok
        table.add_row(h.name, h.address, "[green]ok[/green]" if h.ok else "[red]DOWN[/red]", h.detail)
    console.print(table)
    return ok


@lab.command("down")
@_lab_options
@click.option("--purge", is_flag=True, help="Also delete the run directory (data and logs).")
def lab_down(prefix, run_dir, purge) -> None:
    """Stop every lab process and remove its namespaces, links and rules. Harmless twice."""
    from harness.errors import EnvironmentNotReady
    from harness.lab.config import LabConfig, default_run_dir
    from harness.lab.lab import Lab

    d = run_dir or default_run_dir(prefix)
    try:
        lab_ = Lab.open(d)
    except EnvironmentNotReady:
        lab_ = Lab(LabConfig(prefix=prefix, run_dir=str(d)))
    with console.status("stopping the lab...") as status:
        left = lab_.down(lambda m: status.update(m))
    if left:
        raise EnvironmentNotReady("the lab left these behind: " + ", ".join(left))
    if purge:
        lab_.purge()
    console.print("[green]lab down[/green]: nothing left behind")


@cli.command()
@click.option("--experiment", default="experiments/pod-kill.yaml", show_default=True)
@click.option("--keep-lab", is_flag=True, help="Leave the lab running afterwards.")
@click.pass_context
def demo(ctx, experiment, keep_lab) -> None:
    """Bring the lab up and run one experiment under load: the README's first command."""
    from harness.lab.config import LabConfig
    from harness.lab.lab import Lab

    lab_ = Lab(LabConfig())
    with console.status("starting the lab...") as status:
        took = lab_.up(lambda m: status.update(m))
    console.print(f"[green]lab up[/green] in {took:.1f}s")
    _print_status(lab_)
    try:
        ctx.invoke(run, files=(experiment,), target_spec=None, lab_dir=None, report_dir="reports",
                   quiet=False, as_json=False, dry_run=False)
    finally:
        if not keep_lab:
            lab_.down()
            console.print("lab down (use --keep-lab to keep it)")
        else:
            console.print("\nThe lab is still running: try `harness lab status`, "
                          "`harness run experiments/zone-loss.yaml`, open the report above; "
                          "`harness lab down` removes it.")


def main() -> None:
    debug = "--debug" in sys.argv
    # `kill -QUIT <pid>` (or Ctrl-\\) prints every thread's stack instead of killing the
    # run: how to see what a run that seems stuck is doing, faults stay under its control.
    faulthandler.register(signal.SIGQUIT, all_threads=True)
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err.print("[red]interrupted[/red]")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except InvalidInput as exc:
        for line in str(exc).splitlines():
            err.print(f"[red]error:[/red] {line}")
        sys.exit(exc.exit_code)
    except HarnessError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/red]")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no raw traceback
        if debug:
            traceback.print_exc()
        err.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        sys.exit(70)


if __name__ == "__main__":
    main()

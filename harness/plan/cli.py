"""``harness plan ...``: validate, show, rules, test, check an operations plan.

Only this module prints (click + rich, as harness/cli.py); library code raises
InvalidInput (exit 2) or EnvironmentNotReady (exit 3), which harness.cli turns into
messages without tracebacks.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import yaml
from rich.console import Console
from rich.table import Table

from harness.errors import InvalidInput

PLANS_DIR = Path(__file__).resolve().parents[2] / "plans"


def _console(stderr: bool = False) -> Console:
    c = Console(stderr=stderr, highlight=False)
    if not c.is_terminal:
        c = Console(stderr=stderr, highlight=False, width=200)
    return c


console = _console()
err = _console(stderr=True)


def _files(paths: tuple[str, ...]) -> list[Path]:
    if not paths:
        paths = (str(PLANS_DIR),)
    out: list[Path] = []
    for p in paths:
        pp = Path(p)
        out.extend(sorted(pp.glob("*.yaml")) if pp.is_dir() else [pp])
    return out


def _load(path: str | Path):
    from harness.plan.loader import load_plan

    return load_plan(path)


@click.group()
def plan() -> None:
    """Operations plans: validate, show, generate rules, test them, check live monitoring."""


@plan.command()
@click.argument("files", nargs=-1, type=click.Path())
def validate(files) -> None:
    """Check plan FILES (default: every plan under plans/). file:line:col per problem, exit 2."""
    problems = []
    for f in _files(files):
        try:
            p = _load(f)
        except InvalidInput as exc:
            problems.extend(exc.problems or [])
            if not exc.problems:
                raise
            continue
        console.print(f"[green]ok[/green]  {f}  {p.title}  ({len(p.slos)} SLOs, {len(p.alerts)} alerts, "
                      f"{len(p.routing.receivers) if p.routing else 0} receivers)")
    if problems:
        raise InvalidInput(problems)


def _table(title: str, cols: list[str], rows: list[dict], keys: list[str]) -> Table:
    t = Table(title=title, title_justify="left", show_lines=False)
    for c in cols:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*[str(r.get(k, "")) for k in keys])
    return t


@plan.command()
@click.argument("file", type=click.Path(), required=False)
@click.option("--json", "as_json", is_flag=True, help="The summary as JSON.")
def show(file, as_json) -> None:
    """A readable summary of a plan: SLOs and budgets, alerts by severity and their routes,
    scaling, backups, RTO/RPO, incidents and policy (default plan: plans/lab.yaml)."""
    from harness.plan.loader import default_plan_path
    from harness.plan.show import summary

    s = summary(_load(file or default_plan_path()))
    if as_json:
        click.echo(json.dumps(s, indent=1, ensure_ascii=False))
        return
    console.print(f"[bold]{s['plan']}[/bold]: {s['title']}  ({s['path']})")
    if s["derived_from"]:
        console.print(f"derived from: {s['derived_from']}")
    console.print(f"severities: {', '.join(s['severities'])}")
    if s["slos"]:
        console.print(_table("SLOs (Sloth prometheus/v1; budget per 30 days)",
                             ["service", "SLO", "SLI", "objective", "SLA", "budget (min of outage)",
                              "budget (bad requests per 1M)", "burn-rate alerts", "source"], s["slos"],
                             ["service", "slo", "sli", "objective", "sla", "budget_minutes",
                              "budget_requests_per_million", "burn_alerts", "source"]))
        console.print(f"[dim]burn-rate windows: page {s['burn_windows']['page']}; "
                      f"ticket {s['burn_windows']['ticket']}[/dim]")
    if s["targets"]:
        console.print(_table("Targets without an error budget", ["service", "target", "value", "source"],
                             s["targets"], ["service", "target", "value", "source"]))
    if s["alerts"]:
        console.print(_table("Alerts by severity", ["severity", "alert", "condition", "for", "reaches", "source"],
                             s["alerts"], ["severity", "alert", "condition", "for", "receivers", "source"]))
    if s.get("routes"):
        r = s["routes"]
        console.print(_table("Receivers", ["receiver", "kind", "channels", "severities", "respond within", "source"],
                             r["receivers"], ["receiver", "kind", "channels", "severities", "respond_within",
                                              "source"]))
        console.print(f"routes: group_wait {r['group_wait']}, group_interval {r['group_interval']}, "
                      f"repeat_interval {r['repeat_interval']} ({r['repeat_source']})")
    for i in s["inhibitions"]:
        console.print(f"inhibition: {i['name']}: {i['source_match']} silences {i['target_match']}"
                      f"{' equal ' + ','.join(i['equal']) if i['equal'] else ''}  ({i['source']})")
    m = s["maintenance"]
    if m["windows"] or m["note"]:
        console.print(f"maintenance windows: {', '.join(m['windows']) or 'none'}  {m['note']}")
    for key, title in (("scaling", "Scaling"), ("backup", "Backups, restores, RTO/RPO")):
        if s.get(key):
            console.print(_table(title, ["what", "value", "source"], s[key], ["what", "value", "source"]))
    if s.get("incidents"):
        console.print(_table("Incident severities", ["level", "name", "definition", "respond", "resolve", "source"],
                             s["incidents"], ["level", "name", "definition", "respond", "resolve", "source"]))
        for lv, chain in s["escalation"].items():
            console.print(f"escalation {lv}: {chain}")
        if s["incident_facts"]:
            console.print(_table("Incident facts", ["what", "value", "source"], s["incident_facts"],
                                 ["what", "value", "source"]))
    if s["policy"]:
        console.print(_table("Policy", ["what", "value", "source"], s["policy"], ["what", "value", "source"]))


@plan.command()
@click.argument("file", type=click.Path(), required=False)
@click.option("--out", "out_dir", type=click.Path(), default=None,
              help="Directory to write rules.yml and alertmanager.yml into (default: print both).")
@click.option("--webhook-base", default=None, metavar="URL",
              help="Make every receiver a webhook <URL>/hook/<receiver> (as the lab does).")
def rules(file, out_dir, webhook_base) -> None:
    """Write the Prometheus recording/alert rules (burn-rate SLO alerts included) and the
    Alertmanager configuration (routes, receivers, inhibitions, time intervals) of a plan."""
    from harness.plan.generate import alertmanager_config, prometheus_rules
    from harness.plan.loader import default_plan_path

    p = _load(file or default_plan_path())
    head = f"# GENERATED by `harness plan rules` from {p.path}: edit the plan, not this file.\n"
    r_text = head + yaml.safe_dump(prometheus_rules(p, interval="15s" if p.name != "lab" else "1s",
                                                    sli_records=True), sort_keys=False, allow_unicode=True)
    am_text = head + yaml.safe_dump(alertmanager_config(p, webhook_base), sort_keys=False, allow_unicode=True) \
        if p.routing else ""
    if out_dir:
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        (d / "rules.yml").write_text(r_text)
        console.print(f"wrote {d / 'rules.yml'}")
        if am_text:
            (d / "alertmanager.yml").write_text(am_text)
            console.print(f"wrote {d / 'alertmanager.yml'}")
        return
    click.echo("# --- rules.yml\n" + r_text)
    if am_text:
        click.echo("# --- alertmanager.yml\n" + am_text)


def _print_results(results, as_json: bool, what: str) -> int:
    bad = [r for r in results if not r.ok]
    if as_json:
        click.echo(json.dumps({"ok": not bad, "results": [r.as_dict() for r in results]}, indent=1,
                              ensure_ascii=False))
    else:
        for r in results:
            mark = "[green]ok[/green]  " if r.ok else ("[yellow]skip[/yellow]" if r.skipped else "[red]FAIL[/red]")
            console.print(f"{mark} {r.rule}: {r.message}" + ("" if r.ok else f"  [dim]({r.source})[/dim]"))
        n_ok = sum(1 for r in results if r.ok and not r.skipped)
        n_skip = sum(1 for r in results if r.skipped)
        console.print(f"{what}: {n_ok} passed, {len(bad)} failed" + (f", {n_skip} not testable" if n_skip else ""))
    return 1 if bad else 0


@plan.command("test")
@click.argument("files", nargs=-1, type=click.Path())
@click.option("--rules", "rules_files", multiple=True, type=click.Path(exists=True),
              help="Test these rule files instead of the plan's generated ones.")
@click.option("--alertmanager-config", "am_file", type=click.Path(exists=True), default=None,
              help="Test this Alertmanager config instead of the plan's generated one.")
@click.option("--json", "as_json", is_flag=True)
def test_cmd(files, rules_files, am_file, as_json) -> None:
    """Run each plan's expectations through `promtool test rules` (each alert fires above
    its threshold after its `for`, not before, and not below it) and `amtool config routes
    test` (each severity reaches the plan's receivers). Exit 1 on any failure."""
    from harness.plan.promtest import run_plan_tests

    code = 0
    for f in _files(files):
        p = _load(f)
        if not as_json:
            console.print(f"[bold]{p.name}[/bold] ({f})")
        results = run_plan_tests(p, rules_files=list(rules_files) or None, am_file=am_file)
        code |= _print_results(results, as_json, f"plan test {p.name}")
    sys.exit(code)


@plan.command()
@click.option("--prometheus", "prom_url", default=None, metavar="URL")
@click.option("--alertmanager", "am_url", default=None, metavar="URL")
@click.option("--plan", "plan_file", type=click.Path(), default=None, help="Default: plans/lab.yaml.")
@click.option("--lab-dir", default=None, envvar="HARNESS_LAB_DIR", help="The lab to check when no URL is given.")
@click.option("--json", "as_json", is_flag=True)
def check(prom_url, am_url, plan_file, lab_dir, as_json) -> None:
    """Compare a live Prometheus + Alertmanager with the plan, rule by rule: exit 0 only
    with zero gaps. With no URLs it checks the running lab."""
    from harness.plan.live import check_live, lab_urls
    from harness.plan.loader import default_plan_path

    if not prom_url or not am_url:
        lp, la, lplan = lab_urls(lab_dir)
        prom_url, am_url = prom_url or lp, am_url or la
        plan_file = plan_file or lplan
    p = _load(plan_file or default_plan_path())
    results = check_live(p, prom_url, am_url)
    gaps = [r for r in results if not r.ok]
    if as_json:
        click.echo(json.dumps({"plan": p.path, "prometheus": prom_url, "alertmanager": am_url,
                               "gaps": [r.as_dict() for r in gaps],
                               "checked": len(results)}, indent=1, ensure_ascii=False))
    else:
        console.print(f"plan {p.name} against {prom_url} + {am_url}")
        for r in results:
            if not r.ok:
                console.print(f"[red]GAP[/red]  {r.rule}: {r.message}  [dim]({r.source})[/dim]")
        console.print(f"{len(results) - len(gaps)} of {len(results)} checks hold; {len(gaps)} gaps")
    sys.exit(1 if gaps else 0)

"""The pre-release gate: every experiment and drill tagged with a suite, run one after
another on one target, judged together.

``harness verify --suite pre-release`` finds the files under ``experiments/``,
``scenarios/`` and ``drills/`` (or the directories given) whose ``tags:`` name the suite,
runs each with the usual safety, and ends with a one-screen summary, a Markdown summary
for the CI job page (``--summary``; also appended to ``$GITHUB_STEP_SUMMARY`` when CI sets
it) and the exit code of the worst outcome, naming what failed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import InvalidInput, Problem

DEFAULT_DIRS = ("experiments", "scenarios", "drills")


@dataclass
class Item:
    kind: str  # "experiment" | "drill"
    path: Path
    title: str
    obj: Any


@dataclass
class Outcome:
    item: Item
    status: str
    exit_code: int
    reasons: list[str] = field(default_factory=list)
    numbers: str = ""
    report: str | None = None
    properties: list[tuple[str, str]] = field(default_factory=list)  # JUnit <properties>
    seconds: float = 0.0


def collect(suite: str, dirs: tuple[str, ...] = DEFAULT_DIRS) -> list[Item]:
    """Files tagged ``suite``; every invalid file in the directories is an input error
    (a gate that skips a broken file is not a gate)."""
    from harness.drills.loader import load_drill
    from harness.experiment.loader import load_experiment

    items: list[Item] = []
    problems: list[Problem] = []
    for d in dirs:
        base = Path(d)
        if not base.exists():
            continue
        for path in sorted(base.rglob("*.y*ml")):
            is_drill = "drills" in path.parts
            try:
                obj = load_drill(path) if is_drill else load_experiment(path)
            except InvalidInput as exc:
                problems.extend(exc.problems or [Problem(str(path), 0, 0, str(exc))])
                continue
            if suite in (obj.tags or ()):
                items.append(Item("drill" if is_drill else "experiment", path, obj.title, obj))
    if problems:
        raise InvalidInput(problems)
    return items


def run_item(item: Item, target_spec: str | None, lab_dir: str | None, report_dir: str, progress=None) -> Outcome:
    if item.kind == "drill":
        from harness.drills.run import DrillRun

        r = DrillRun(item.obj, lab_dir=lab_dir, report_dir=report_dir, lock_wait=600).execute()
        rto, rpo = (r.journal.get("rto") or {}), (r.journal.get("rpo") or {})
        numbers = " ".join(x for x in (
            f"RTO {rto.get('seconds'):.1f}s" if isinstance(rto.get("seconds"), (int, float)) else "",
            f"RPO {rpo.get('seconds'):.1f}s" if isinstance(rpo.get("seconds"), (int, float)) else "") if x)
        props = [("verdict", r.status), ("exit_code", str(r.exit_code)), *(("reason", x) for x in r.reasons)]
        props += [(k, v) for k, v in (("numbers", numbers), ("report", r.report_path)) if v]
        return Outcome(item, r.status, r.exit_code, list(r.reasons), numbers, r.report_path, props)
    from harness.engine.run import Run
    from harness.targets import resolve_target

    target = resolve_target(target_spec or item.obj.target, lab_dir)
    res = Run(item.obj, target, report_dir=report_dir, progress=progress, lock_wait=600).execute()
    numbers = []
    for r in res.slo_results:
        if r.phase == "under-fault" and r.sli == "availability":
            numbers.append(f"availability under fault {r.rendered}")
    if res.recovery and res.recovery.get("seconds") is not None:
        numbers.append(f"recovered in {res.recovery['seconds']:.1f}s")
    from harness.pytest_plugin import verdict_properties

    return Outcome(item, res.verdict.status, res.verdict.exit_code, list(res.verdict.reasons), ", ".join(numbers),
                   res.report_path, verdict_properties(res))


def worst_exit(outcomes: list[Outcome]) -> int:
    """130 if interrupted, else the first non-zero exit code in severity order."""
    codes = [o.exit_code for o in outcomes]
    for code in (130, 5, 4, 3, 1, 2):
        if code in codes:
            return code
    return 0


def markdown(suite: str, outcomes: list[Outcome]) -> str:
    failed = [o for o in outcomes if o.exit_code != 0]
    head = "PASSED" if not failed else f"FAILED ({len(failed)} of {len(outcomes)})"
    lines = [f"## Resilience suite `{suite}`: {head}", "", "| | item | verdict | numbers | report |", "|---|---|---|---|---|"]
    for o in outcomes:
        mark = "✅" if o.exit_code == 0 else "❌"
        report = f"`{o.report}`" if o.report else ""
        lines.append(f"| {mark} | {o.item.kind} `{o.item.path}` | {o.status} | {o.numbers} | {report} |")
    for o in failed:
        lines += ["", f"### {o.item.path}: {o.status}", *[f"- {r}" for r in o.reasons]]
    return "\n".join(lines) + "\n"


def write_summary(text: str, path: str | None) -> list[str]:
    written = []
    for p in filter(None, (path, os.environ.get("GITHUB_STEP_SUMMARY"))):
        Path(p).parent.mkdir(parents=True, exist_ok=True)
        with open(p, "a") as f:
            f.write(text)
        written.append(p)
    return written


def write_junit(suite: str, outcomes: list[Outcome], path: str) -> None:
    """JUnit XML as CI systems read it (GitHub's test reporters, GitLab's
    ``artifacts:reports:junit``): one <testcase> per item, a <failure> with the reasons
    for a failed verdict, an <error> for a run that could not be judged (exit 3/5)."""
    import xml.etree.ElementTree as ET

    failures = sum(1 for o in outcomes if o.exit_code in (1, 4))
    errors = sum(1 for o in outcomes if o.exit_code not in (0, 1, 4))
    suite_el = ET.Element("testsuite", name=f"resilience {suite}", tests=str(len(outcomes)),
                          failures=str(failures), errors=str(errors),
                          time=f"{sum(o.seconds for o in outcomes):.3f}")
    for o in outcomes:
        case = ET.SubElement(suite_el, "testcase", classname=f"{o.item.kind}.{o.item.path.parent.name}",
                             name=str(o.item.path), time=f"{o.seconds:.3f}")
        props = ET.SubElement(case, "properties")
        for name, value in o.properties:
            ET.SubElement(props, "property", name=name, value=value)
        if o.exit_code != 0:
            tag = "failure" if o.exit_code in (1, 4) else "error"
            el = ET.SubElement(case, tag, message=f"{o.status}: " + "; ".join(o.reasons[:3]))
            el.text = "\n".join(o.reasons) + (f"\nreport: {o.report}" if o.report else "")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    root = ET.Element("testsuites")
    root.append(suite_el)
    ET.ElementTree(root).write(path, encoding="unicode", xml_declaration=True)

"""Drill files (drills/*.yaml) as pytest items.

One item per drill file, marked ``lab``. It passes when the drill's verdict is
"passed"; otherwise the failure is a few lines: the verdict, each reason with its
measured numbers, RTO/RPO against their targets, and where the report is (no
traceback). A malformed file fails with its file:line:col problems. pgBackRest drills
run on the session lab (``--lab=auto`` / ``--lab=existing``); a drill with a
``test-bed:`` gets its throwaway databases started (and removed) around it.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError, InvalidInput


def collect_drill(file_path, parent):
    """A pytest.File for a drill file, or None."""
    path = Path(file_path)
    if path.suffix not in (".yaml", ".yml"):
        return None
    return DrillFile.from_parent(parent, path=path)


class DrillFile(pytest.File):
    def collect(self):
        yield DrillItem.from_parent(self, name=self.path.stem)


class DrillFailure(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def run_drill_with_test_bed(drill, run, *, dump_args: list[str] | None = None):
    """Run ``run(env)`` with the drill's test bed (if it has one) around it."""
    tb = drill.test_bed.get("mariadb") if drill.test_bed else None
    if not tb:
        return run({})
    from harness.drills.testbed import MariaDbTestBed

    seed = Path(tb.get("seed", "data/shop.sql"))
    if not seed.is_absolute():
        seed = drill.path.parent / seed
    with MariaDbTestBed(seed, source_port=int(tb.get("source-port", 23600)),
                        scratch_port=int(tb.get("scratch-port", 23601)), dump_args=dump_args) as bed:
        return run(bed.env)


def failure_text(result) -> str:
    from harness.quantities import format_duration

    j = result.journal
    rto, rpo = j.get("rto") or {}, j.get("rpo") or {}
    lines = [f"drill {result.status}: {j['drill']['title']}"]
    lines += [f"  {r}" for r in result.reasons]
    lines.append(f"  RTO {format_duration(rto['seconds']) if rto.get('seconds') is not None else 'not reached'}"
                 f" (target {rto.get('target_text') or '—'}), RPO "
                 f"{format_duration(rpo['seconds']) if rpo.get('seconds') is not None else 'not measured'}"
                 f" (target {rpo.get('target_text') or '—'})")
    lines.append(f"  journal: {result.journal_path}")
    if result.report_path:
        lines.append(f"  report: {result.report_path}")
    return "\n".join(lines)


class DrillItem(pytest.Item):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.drill = None
        self.load_error: InvalidInput | None = None
        from harness.drills.loader import load_drill

        self.add_marker("lab")
        try:
            self.drill = load_drill(self.path)
        except InvalidInput as exc:
            self.load_error = exc
            return
        from harness.pytest_plugin import mark_tags

        mark_tags(self, self.drill.tags)  # `pytest -m pre-release drills/`, as for experiments

    def runtest(self) -> None:
        if self.load_error:
            raise DrillFailure(str(self.load_error))
        from harness.drills.run import DrillRun

        drill = self.drill
        lab_dir = None
        if drill.driver == "pgbackrest":
            from harness.pytest_plugin import session_lab

            lab_dir = session_lab(self.config).cfg.run_dir
        report_dir = self.config.getoption("harness_report_dir")

        def run(env):
            return DrillRun(drill, lab_dir=lab_dir, report_dir=report_dir, lock_wait=600, env=env).execute()

        result = run_drill_with_test_bed(drill, run)
        self.user_properties.append(("verdict", result.status))
        self.user_properties.append(("journal", result.journal_path))
        if result.status == "interrupted":
            raise KeyboardInterrupt
        if not result.passed:
            raise DrillFailure(failure_text(result))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, (DrillFailure, HarnessError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        title = self.drill.title if self.drill else "invalid drill"
        return self.path, 0, f"drill: {title}"

"""pytest plugin: experiment files are test items; one lab per session.

* Every ``*.yaml``/``*.yml``/``*.json`` file below a folder named ``experiments``
  (or ``scenarios``) becomes one test item: it passes when the experiment's verdict
  is "passed"; otherwise the failure says which SLI, what was observed, the objective
  and when (no traceback). A malformed file fails with its file:line:col problems.
* ``--lab=auto`` starts a lab for the session when an item or the ``harness_lab``
  fixture first needs one, and tears it down at the end; ``--lab=existing`` uses the
  running one (``harness lab up``); ``--lab=none`` for tests that need no lab.
* Markers: ``lab`` (needs the local lab), ``k8s`` (needs a Kubernetes test bed),
  ``soak`` (long; deselected unless ``-m soak``).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ExperimentFailed, HarnessError, InvalidInput

_SESSION: dict[str, Any] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "resilience harness")
    group.addoption("--target", dest="harness_target", default=None,
                    help="target for experiment items: 'lab' (default) or a target file")
    group.addoption("--lab", dest="harness_lab", default="existing", choices=["auto", "existing", "none"],
                    help="auto: start a lab for the session; existing: use the running one (default)")
    group.addoption("--lab-dir", dest="harness_lab_dir", default=None, help="run dir of the lab to use")
    group.addoption("--lab-prefix", dest="harness_lab_prefix", default="rht",
                    help="prefix of a lab started by --lab=auto (default rht, away from a developer's rh lab)")
    group.addoption("--lab-port-base", dest="harness_lab_port_base", type=int, default=21000)
    group.addoption("--lab-subnet", dest="harness_lab_subnet", default="10.79.0")
    group.addoption("--report-dir", dest="harness_report_dir", default="reports",
                    help="where experiment items write journals and reports")


def pytest_addhooks(pluginmanager) -> None:
    from harness import pytest_hooks

    pluginmanager.add_hookspecs(pytest_hooks)


_TARGETS: dict[str, object] = {}
_REGISTERED_TAGS: set[str] = set()


def verdict_properties(result) -> list[tuple[str, str]]:
    """What a CI page shows of a run (JUnit ``<properties>`` via ``--junitxml``): the
    verdict, every SLO per phase and every expectation with its numbers, recovery, abort."""
    props = [("verdict", result.verdict.status), ("exit_code", str(result.verdict.exit_code))]
    for reason in result.verdict.reasons:
        props.append(("reason", reason))
    for r in result.slo_results:
        props.append((f"slo {r.phase}: {r.label}", f"{'held' if r.passed else 'BROKEN'} {r.rendered}"))
    for c in result.checks:
        props.append((f"check {c.kind}", ("met: " if c.passed else "NOT MET: ") + c.summary))
    if result.recovery and result.recovery.get("seconds") is not None:
        props.append(("recovery_seconds", f"{result.recovery['seconds']:g}"))
    if result.abort:
        props.append(("abort", str(result.abort.get("message"))))
    props.append(("journal", str(result.journal_path)))
    if result.report_path:
        props.append(("report", str(result.report_path)))
    return props


def session_target(config: pytest.Config, spec: str):
    """A non-lab target for experiment items, made ready once per session (through the
    ``pytest_harness_prepare_target`` hook) and resolved once."""
    from harness.targets import resolve_target

    if spec not in _TARGETS:
        config.hook.pytest_harness_prepare_target(config=config, spec=spec)
        _TARGETS[spec] = resolve_target(spec)
    return _TARGETS[spec]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab: needs the local lab (real processes)")
    config.addinivalue_line("markers", "k8s: needs the Kubernetes test bed (tools/k8s-testbed)")
    config.addinivalue_line("markers", "soak: long-running; run with -m soak")
    config.addinivalue_line("markers", "docker: needs a Docker engine")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    markexpr = config.getoption("markexpr", "") or ""
    if "soak" in markexpr:
        return
    # Soak tests are deselected (not skipped) from every run that does not ask for them
    # with -m soak: the default run neither runs nor reports them.
    soak = [item for item in items if "soak" in item.keywords]
    if soak:
        config.hook.pytest_deselected(items=soak)
        items[:] = [item for item in items if "soak" not in item.keywords]


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.suffix not in (".yaml", ".yml", ".json"):
        return None
    if "drills" in file_path.parts[:-1]:
        from harness.drills.pytest_items import collect_drill

        return collect_drill(file_path, parent)
    if not ({"experiments", "scenarios"} & set(file_path.parts[:-1])):
        return None
    return ExperimentFile.from_parent(parent, path=file_path)


# -- the session lab ----------------------------------------------------------------------
def session_lab(config: pytest.Config):
    """The lab of this test session (started once with --lab=auto)."""
    from harness.lab.config import LabConfig
    from harness.lab.lab import Lab

    if "lab" in _SESSION:
        return _SESSION["lab"]
    mode = config.getoption("harness_lab")
    if mode == "none":
        raise HarnessError("this test needs the lab: run pytest with --lab=auto or start one with `harness lab up`")
    if mode == "existing":
        lab = Lab.open(config.getoption("harness_lab_dir"))
    else:
        cfg = LabConfig(
            prefix=config.getoption("harness_lab_prefix"),
            subnet=config.getoption("harness_lab_subnet"),
            port_base=config.getoption("harness_lab_port_base"),
            run_dir=config.getoption("harness_lab_dir") or "",
        )
        lab = Lab(cfg)
        lab.down()  # a previous session killed half-way leaves nothing in the way
        t0 = time.monotonic()
        lab.up()
        _SESSION["lab_up_seconds"] = time.monotonic() - t0

        def teardown() -> None:
            left = lab.down()
            if left:
                print(f"\nharness: the session lab left {left}")

        config.add_cleanup(teardown)
    os.environ["HARNESS_LAB_DIR"] = lab.cfg.run_dir
    _SESSION["lab"] = lab
    return lab


@pytest.fixture(scope="session")
def harness_lab(pytestconfig: pytest.Config):
    """The session's lab (a :class:`harness.lab.lab.Lab`), healthy."""
    return session_lab(pytestconfig)


@pytest.fixture(scope="session")
def harness_report_dir(pytestconfig: pytest.Config) -> Path:
    return Path(pytestconfig.getoption("harness_report_dir"))


# -- experiment items -----------------------------------------------------------------------
def mark_tags(item: pytest.Item, tags) -> None:
    """A file's tags are pytest markers: `pytest -m nightly`, `-m "zone-loss and not slow"`
    (experiments, scenarios and drills alike)."""
    for tag in tags:
        if tag not in _REGISTERED_TAGS:
            item.config.addinivalue_line("markers", f"{tag}: files tagged '{tag}'")
            _REGISTERED_TAGS.add(tag)
        item.add_marker(tag)


class ExperimentFile(pytest.File):
    def collect(self):
        yield ExperimentItem.from_parent(self, name=self.path.stem)


class ExperimentFailure(ExperimentFailed):
    """An experiment item's verdict was not 'passed': its reasons, for the CI page."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ExperimentItem(pytest.Item):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.experiment = None
        self.load_error: InvalidInput | None = None
        from harness.experiment.loader import load_experiment

        try:
            self.experiment = load_experiment(self.path)
        except InvalidInput as exc:
            self.load_error = exc
            return
        from harness.targets import target_class, target_kind_of

        spec = self.config.getoption("harness_target") or self.experiment.target
        try:
            marker = target_class(target_kind_of(spec)).marker
        except HarnessError as exc:
            self.load_error = InvalidInput(f"{self.path}: target: {exc}")
            return
        if marker:
            self.add_marker(marker)  # the target picks its marker: lab, k8s, ...
        mark_tags(self, self.experiment.tags)

    def runtest(self) -> None:
        if self.load_error:
            raise ExperimentFailure(str(self.load_error))
        from harness.engine.run import Run
        from harness.targets import resolve_target

        exp = self.experiment
        assert exp is not None
        spec = self.config.getoption("harness_target") or exp.target
        if spec in (None, "", "lab"):
            lab = session_lab(self.config)
            target = resolve_target("lab", lab.cfg.run_dir)
        else:
            target = session_target(self.config, spec)
        # Wait for the run lock rather than fail when a test holds it (never several at once).
        result = Run(exp, target, report_dir=self.config.getoption("harness_report_dir"), lock_wait=600).execute()
        self.user_properties.extend(verdict_properties(result))
        if not result.verdict.passed:
            lines = [f"verdict: {result.verdict.status}"] + [f"  {r}" for r in result.verdict.reasons]
            lines.append(f"  journal: {result.journal_path}")
            if result.report_path:
                lines.append(f"  report: {result.report_path}")
            raise ExperimentFailure("\n".join(lines))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, (ExperimentFailure, HarnessError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        title = self.experiment.title if self.experiment else "invalid experiment"
        return self.path, 0, f"experiment: {title}"

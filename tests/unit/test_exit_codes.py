"""One exit-code table: the README's, `harness --help`'s, the verdicts' and the
exceptions' codes are all harness.errors.EXIT_CODES."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import harness.errors as errors
from harness.engine.results import Verdict

ROOT = Path(__file__).resolve().parents[2]


def _readme_table() -> dict[int, str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("Exit codes"):]
    rows = re.findall(r"^\| (\d+) \| (.+?) \|$", section, re.M)
    return {int(code): meaning for code, meaning in rows}


def test_the_readme_table_is_the_harness_table():
    assert _readme_table() == errors.EXIT_CODES


def test_help_prints_the_table():
    out = subprocess.run([sys.executable, "-m", "harness.cli", "--help"], capture_output=True, text=True, cwd=ROOT)
    for code, meaning in errors.EXIT_CODES.items():
        assert re.search(rf"^\s*{code}\s+{re.escape(meaning[:40])}", out.stdout, re.M), (code, out.stdout)


def test_every_verdict_and_every_error_maps_into_the_table():
    for status in errors.VERDICT_EXIT:
        assert Verdict(status).exit_code in errors.EXIT_CODES
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.HarnessError)]
    assert len(classes) >= 8
    for cls in classes:
        assert cls.exit_code in errors.EXIT_CODES, cls


def test_harness_exceptions_are_one_tree():
    """Test-bed and pytest-item errors belong to the tree too (the CLI maps them)."""
    from harness.pytest_plugin import ExperimentFailure
    from tests.support.k8s_testbed import TestbedError

    assert issubclass(ExperimentFailure, errors.HarnessError)
    assert issubclass(TestbedError, errors.HarnessError)

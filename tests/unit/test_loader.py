"""Loading experiments: every problem reported with file:line:col, nothing executed."""
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import InvalidInput
from harness.experiment.loader import load_experiment

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, text, name="exp.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD = """\
title: t
load: {locustfile: %s, users: 5}
steady-state:
  window: 5s
  slo: {availability: ">= 99%%", latency_p99: "< 500ms"}
method:
  - fault: pod-kill
    selector: {app: api}
    count: 1
    duration: 10s
abort-when:
  - error_ratio: "> 20%%"
    for: 2s
  - elapsed: "> 3m"
recovery: {within: 30s}
expect:
  - recovers: {within: 30s, from: inject}
"""


def test_repo_experiments_are_valid():
    for path in sorted((ROOT / "experiments").rglob("*.yaml")):
        load_experiment(path)


def test_good_experiment_is_typed(tmp_path):
    exp = load_experiment(write(tmp_path, GOOD % (ROOT / "load/api.py")))
    assert exp.load.users == 5 and exp.load.warmup == 5.0
    assert exp.steady_state.window == 5.0
    assert [s.sli for s in exp.steady_state.slos] == ["availability", "latency_p99"]
    (step,) = exp.faults
    assert step.fault == "pod-kill" and step.duration == 10.0 and step.params == {"selector": {"app": "api"}, "count": 1}
    assert exp.abort[0].hold == 2.0 and exp.abort[0].objective.value == pytest.approx(0.2)
    assert exp.abort[1].sli == "elapsed" and exp.abort[1].objective.value == 180
    assert exp.recovery_within == 30.0
    assert exp.expect[0].kind == "recovers"
    assert not exp.plain_ctk


def problems_of(path):
    with pytest.raises(InvalidInput) as exc:
        load_experiment(path)
    return exc.value.problems


def test_every_problem_has_its_line_and_column(tmp_path):
    bad = """\
title: bad
load: {locustfile: nope.py, userz: 3}
steady-state:
  window: 10x
  slo: {availabilty: ">= 99%", latency_p99: "fast"}
method:
  - fault: pod-kil
  - fault: pod-kill
    count: 0
abort-when:
  - error_ratio: "= 3"
"""
    probs = problems_of(write(tmp_path, bad))
    text = "\n".join(str(p) for p in probs)
    assert all(str(p).startswith(str(tmp_path / "exp.yaml") + ":") for p in probs)
    expect = [
        (2, "unknown key 'userz'"),
        (2, "locustfile 'nope.py' not found"),
        (4, "duration like 30s"),
        (5, "'availabilty'"),
        (5, "got 'fast'"),
        (7, "unknown fault 'pod-kil'"),
        (8, "'selector' is required"),
        (9, "less than the minimum of 1"),
        (11, "got '= 3'"),
    ]
    for line, needle in expect:
        assert any(p.line == line and needle in p.message for p in probs), f"line {line}: {needle!r} not in\n{text}"


def test_faults_without_abort_conditions_are_refused(tmp_path):
    text = GOOD % (ROOT / "load/api.py")
    text = text.split("abort-when:")[0] + "recovery: {within: 30s}\n"
    probs = problems_of(write(tmp_path, text))
    assert any("abort condition" in p.message for p in probs)


def test_yaml_tags_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"
    text = f"title: !!python/object/apply:os.system ['touch {marker}']\n"
    probs = problems_of(write(tmp_path, text))
    assert "not allowed" in probs[0].message and probs[0].line == 1
    assert not marker.exists()


def test_billion_laughs_is_refused_not_expanded(tmp_path):
    lines = ["title: x", "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    prev = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
        prev = name
    probs = problems_of(write(tmp_path, "\n".join(lines) + "\n"))
    assert "too large" in probs[0].message


def test_huge_file_is_refused(tmp_path):
    p = tmp_path / "big.yaml"
    p.write_text("title: x\n" + "# " + "x" * (1 << 20) + "\n")
    assert "limited" in problems_of(p)[0].message


def test_syntax_error_points_at_the_spot(tmp_path):
    probs = problems_of(write(tmp_path, "title: x\nmethod: [\n"))
    assert probs[0].line >= 2 and "YAML syntax" in probs[0].message


def test_duplicate_keys(tmp_path):
    probs = problems_of(write(tmp_path, "title: a\ntitle: b\n"))
    assert probs[0].line == 2 and "duplicate key 'title'" in probs[0].message


def test_binary_and_missing_files(tmp_path):
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"\xff\xfe\x00garbage")
    assert "UTF-8" in problems_of(p)[0].message
    assert "not found" in problems_of(tmp_path / "missing.yaml")[0].message


def test_plain_chaostoolkit_experiment_is_recognised(tmp_path):
    text = """\
title: plain
description: a plain Chaos Toolkit experiment
steady-state-hypothesis:
  title: ok
  probes:
    - type: probe
      name: true-ish
      tolerance: 0
      provider: {type: process, path: "true"}
method:
  - type: action
    name: noop
    provider: {type: process, path: "true"}
"""
    exp = load_experiment(write(tmp_path, text))
    assert exp.plain_ctk and exp.method[0].kind == "activity"


def test_invalid_plain_chaostoolkit_experiment(tmp_path):
    text = "title: plain\nmethod:\n  - type: action\n    name: x\n"
    probs = problems_of(write(tmp_path, text))
    assert "Chaos Toolkit" in probs[0].message


def test_cli_validate_exit_code_and_no_traceback(tmp_path):
    bad = write(tmp_path, "title: x\nmethod:\n  - fault: nope\n")
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "validate", str(bad)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert f"{bad}:3:5: unknown fault 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_cli_run_rejects_bad_file_before_anything(tmp_path):
    bad = write(tmp_path, "title: [unclosed\n")
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(bad)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "YAML syntax" in proc.stderr and "Traceback" not in proc.stderr


def test_folded_text_reads_as_yaml_says():
    from harness.experiment.yamlsafe import load_text

    data, _ = load_text("d: >\n  one two\n  three\n\n  para\nl: |\n  a\n  b\n")
    assert data["d"] == "one two three\npara\n" and data["l"] == "a\nb\n"

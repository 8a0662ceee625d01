"""The CI examples under examples/ci/ work: their exact command lines run here, in order,
with the CI system's own rules for what runs after a failure (GitHub: only
``if: always()`` steps; GitLab: ``after_script``), against a lab of their own (a sibling
of the session's, chosen through the environment, as a CI job's variables would).

The suite they run is two small experiments (found through $HARNESS_SUITE_DIRS), one
that passes and one that fails: the job must exit non-zero, name the failing one, and
leave its JUnit file, its Markdown summary (also on $GITHUB_STEP_SUMMARY) and the
reports behind, with the lab taken down."""
from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET

import yaml

from harness.lab import sh

from .conftest import ROOT, sibling_config


def _experiment(name: str, probe: str) -> str:
    return f"""\
title: {name}
description: a plain Chaos Toolkit experiment; its probe decides
tags: [example-suite]
steady-state-hypothesis:
  title: the probe holds
  probes:
    - type: probe
      name: probe-{name}
      tolerance: 0
      provider: {{type: process, path: sh, arguments: "-c '{probe}'"}}
method:
  - type: action
    name: nothing
    provider: {{type: process, path: sh, arguments: "-c 'true'"}}
"""


def _env(lab, tmp_path) -> dict:
    suite = tmp_path / "suite" / "experiments"
    suite.mkdir(parents=True)
    (suite / "holds.yaml").write_text(_experiment("holds", "true"))
    (suite / "breaks.yaml").write_text(_experiment("breaks", "false"))
    cfg = sibling_config(lab.cfg, 6, run_dir=str(tmp_path / "ci-lab"))
    return {**os.environ, "SUITE": "example-suite", "HARNESS_SUITE_DIRS": str(suite),
            "HARNESS_LAB_DIR": cfg.run_dir, "HARNESS_LAB_PREFIX": cfg.prefix,
            "HARNESS_LAB_PORT_BASE": str(cfg.port_base), "HARNESS_LAB_SUBNET": cfg.subnet,
            "HARNESS_LAB_NO_DB": "1", "GITHUB_STEP_SUMMARY": str(tmp_path / "step-summary.md")}, cfg


def _sh(line: str, env: dict, log: list) -> int:
    proc = subprocess.run(["bash", "-eo", "pipefail", "-c", line], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    log.append((line, proc.returncode, proc.stdout[-4000:] + proc.stderr[-2000:]))
    return proc.returncode


def _reports_left(cfg, env, tmp_path, log):
    junit = ROOT / "reports" / "junit.xml"
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert sorted(cases) == [f"{env['HARNESS_SUITE_DIRS']}/breaks.yaml", f"{env['HARNESS_SUITE_DIRS']}/holds.yaml"]
    broken = cases[f"{env['HARNESS_SUITE_DIRS']}/breaks.yaml"]
    failure = broken.find("failure")
    assert failure is not None and failure.get("message").startswith(("failed", "not-steady")), ET.tostring(broken)
    held = cases[f"{env['HARNESS_SUITE_DIRS']}/holds.yaml"]
    assert held.find("failure") is None and held.find("error") is None
    props = {p.get("name"): p.get("value") for p in held.iter("property")}
    assert props["verdict"] == "passed" and props["exit_code"] == "0"
    summary = (ROOT / "reports" / "summary.md").read_text()
    assert "FAILED (1 of 2)" in summary and "breaks.yaml" in summary
    assert "breaks.yaml" in (tmp_path / "step-summary.md").read_text()
    # the lab was taken down by the always-run steps
    assert cfg.prefix + "-zone-a" not in sh.run("ip", "netns", "list").stdout
    out = "\n".join(o for _, _, o in log)
    assert "FAILED" in out and "breaks.yaml" in out


def _keep_reports_apart():
    """The examples write reports/ in the checkout, as a CI job does; keep the repo's own."""
    for name in ("junit.xml", "summary.md"):
        p = ROOT / "reports" / name
        if p.exists():
            p.unlink()


def test_github_actions_example_runs_and_fails_on_the_failing_experiment(lab, tmp_path):
    wf = yaml.safe_load((ROOT / "examples" / "ci" / "github-actions.yml").read_text())
    assert "schedule" in wf[True] and "workflow_dispatch" in wf[True]  # YAML 1.1 reads `on` as True
    job = wf["jobs"]["resilience"]
    assert "${{ inputs.suite" in job["env"]["SUITE"]
    env, cfg = _env(lab, tmp_path)
    _keep_reports_apart()
    log, failed = [], False
    try:
        for step in job["steps"]:
            if "run" not in step:
                continue  # `uses:` actions (checkout, upload-artifact, junit report) are GitHub's own
            if failed and step.get("if") != "always()":
                continue
            if _sh(step["run"], env, log) != 0:
                failed = True
        codes = {line: code for line, code, _ in log}
        verify = next(line for line in codes if "harness verify" in line)
        assert codes[verify] == 1, log
        assert all(code == 0 for line, code in codes.items() if line != verify), log
        _reports_left(cfg, env, tmp_path, log)
    finally:
        subprocess.run([str(ROOT / ".venv" / "bin" / "harness"), "lab", "down"], env=env, cwd=ROOT,
                       capture_output=True, timeout=300)
        _keep_reports_apart()


def test_gitlab_ci_example_runs_and_fails_on_the_failing_experiment(lab, tmp_path):
    job = yaml.safe_load((ROOT / "examples" / "ci" / "gitlab-ci.yml").read_text())["resilience"]
    assert any("schedule" in r["if"] for r in job["rules"])
    assert job["artifacts"]["reports"]["junit"] == "reports/junit.xml"
    env, cfg = _env(lab, tmp_path)
    assert job["variables"]["SUITE"] == "ci"  # the default; a pipeline schedule's variable overrides it, as here
    _keep_reports_apart()
    log = []
    try:
        codes = []
        for line in job["script"]:
            codes.append(_sh(line, env, log))
            if codes[-1] != 0:
                break  # GitLab stops the script at the first failing line
        for line in job["after_script"]:
            assert _sh(line, env, log) == 0, log
        assert codes[-1] == 1 and "harness verify" in log[len(codes) - 1][0], log
        _reports_left(cfg, env, tmp_path, log)
    finally:
        subprocess.run([str(ROOT / ".venv" / "bin" / "harness"), "lab", "down"], env=env, cwd=ROOT,
                       capture_output=True, timeout=300)
        _keep_reports_apart()

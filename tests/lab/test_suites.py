"""Suites by marker: experiment tags are pytest markers, and JUnit XML carries each
verdict's numbers as properties and a short failure message a CI page shows well."""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

from .conftest import ROOT


def _experiment(tags: str, probe: str) -> str:
    return f"""\
title: a tagged plain Chaos Toolkit experiment ({probe})
description: no harness keys; its probe decides
tags: [{tags}]
steady-state-hypothesis:
  title: the probe holds
  probes:
    - type: probe
      name: probe-{probe}
      tolerance: 0
      provider: {{type: process, path: sh, arguments: "-c '{probe}'"}}
method:
  - type: action
    name: nothing
    provider: {{type: process, path: sh, arguments: "-c 'true'"}}
"""


def _pytest(lab, tmp_path, *args):
    env = {**os.environ, "HARNESS_LAB_DIR": lab.cfg.run_dir}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--lab=existing",
                           "--lab-dir", lab.cfg.run_dir, "--report-dir", str(tmp_path / "reports"), *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


def test_tags_pick_suites_and_junit_carries_the_verdicts(lab, tmp_path):
    d = tmp_path / "experiments"
    d.mkdir()
    (d / "nightly-ok.yaml").write_text(_experiment("nightly, zone-loss", "true"))
    (d / "nightly-broken.yaml").write_text(_experiment("nightly, slow", "false"))
    (d / "pre-release.yaml").write_text(_experiment("pre-release", "true"))
    xml = tmp_path / "junit.xml"
    out = _pytest(lab, tmp_path, "-m", "nightly and not slow", f"--junitxml={xml}", str(d))
    assert out.returncode == 0, out.stdout[-3000:]
    cases = ET.parse(xml).getroot().iter("testcase")
    names = sorted(c.get("name") for c in cases)
    assert names == ["nightly-ok"], names

    out = _pytest(lab, tmp_path, "-m", "nightly", f"--junitxml={xml}", str(d))
    assert out.returncode == 1, out.stdout[-3000:]
    cases = {c.get("name"): c for c in ET.parse(xml).getroot().iter("testcase")}
    assert sorted(cases) == ["nightly-broken", "nightly-ok"]
    props = {p.get("name"): p.get("value") for p in cases["nightly-ok"].iter("property")}
    assert props["verdict"] == "passed" and props["exit_code"] == "0" and props["journal"].endswith("journal.json")
    broken = cases["nightly-broken"]
    bprops = {p.get("name"): p.get("value") for p in broken.iter("property")}
    assert bprops["verdict"] in ("failed", "not-steady") and bprops["exit_code"] == "1"
    failure = broken.find("failure")
    assert failure is not None
    text = failure.get("message", "") + (failure.text or "")
    assert text.startswith("verdict: ") and "Traceback" not in text, text
    assert "journal:" in text


def test_verify_runs_the_suite_and_names_what_failed(lab, tmp_path):
    d = tmp_path / "experiments"
    d.mkdir()
    (d / "gate-ok.yaml").write_text(_experiment("pre-release", "true"))
    (d / "gate-broken.yaml").write_text(_experiment("pre-release, nightly", "false"))
    (d / "not-in-suite.yaml").write_text(_experiment("nightly", "false"))
    summary = tmp_path / "summary.md"
    env = {**os.environ, "HARNESS_LAB_DIR": lab.cfg.run_dir, "GITHUB_STEP_SUMMARY": str(tmp_path / "gh.md")}
    out = subprocess.run([sys.executable, "-m", "harness.cli", "verify", "--suite", "pre-release", "--dir", str(d),
                          "--report-dir", str(tmp_path / "reports"), "--summary", str(summary)],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-2000:]
    assert "2 item(s)" in out.stdout and "not-in-suite" not in out.stdout
    assert f"FAILED {d / 'gate-broken.yaml'}" in out.stdout
    md = summary.read_text()
    assert "FAILED (1 of 2)" in md and "gate-ok.yaml" in md and "### " + str(d / "gate-broken.yaml") in md
    assert (tmp_path / "gh.md").read_text() == md  # the CI job page gets the same summary
    (d / "gate-broken.yaml").unlink()
    ok = subprocess.run([sys.executable, "-m", "harness.cli", "verify", "--suite", "pre-release", "--dir", str(d),
                         "--report-dir", str(tmp_path / "reports")],
                        capture_output=True, text=True, cwd=ROOT, env={**env, "GITHUB_STEP_SUMMARY": ""}, timeout=600)
    assert ok.returncode == 0, ok.stdout[-3000:]
    (d / "bad.yaml").write_text("title: t\nmethod: [{fault: nope}]\n")
    bad = subprocess.run([sys.executable, "-m", "harness.cli", "verify", "--suite", "pre-release", "--dir", str(d)],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert bad.returncode == 2 and "unknown fault 'nope'" in bad.stderr

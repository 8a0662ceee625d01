"""A third-party fault is one module registered through the ``resilience_harness.plugins``
entry point: a real package, installed with pip into a directory of its own, is picked
up by the catalogue, `harness faults`, validation and the lab target."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).parent / "plugin_fixture"
ROOT = Path(__file__).resolve().parents[2]


def _install(tmp_path) -> Path:
    """pip-install the plugin from a copy (a build leaves build/ and egg-info beside it)."""
    src, site = tmp_path / "src", tmp_path / "site"
    shutil.copytree(FIXTURE, src)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(src)], check=True, capture_output=True, text=True)
    return site


def _harness(site, *args, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


def test_an_installed_plugin_fault_is_picked_up(tmp_path):
    site = _install(tmp_path)
    out = _harness(site, "faults")
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if "disk-fill" in line)
    assert "harness_disk_fill" in row  # implemented on the lab, by the plugin
    exp = tmp_path / "disk.yaml"
    exp.write_text(f"""\
title: fill a disk
method:
  - {{fault: disk-fill, path: {tmp_path}, megabytes: 1, settle: 2s, duration: 1s}}
abort-when: [{{elapsed: "> 1m"}}]
""")
    ok = _harness(site, "validate", "--target", "lab", str(exp))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = exp.read_text().replace(str(tmp_path), str(tmp_path / "missing"))
    exp.write_text(bad)
    refused = _harness(site, "validate", "--target", "lab", str(exp))
    assert refused.returncode == 2 and f"{exp}:3:5: disk-fill: no directory" in refused.stderr, refused.stderr
    # the catalogue schema of the plugin's parameters is enforced at load time too
    exp.write_text(bad.replace("megabytes: 1", "megabytes: lots"))
    typed = _harness(site, "validate", str(exp))
    assert typed.returncode == 2 and "megabytes" in typed.stderr


def test_without_the_plugin_the_fault_is_unknown(tmp_path):
    exp = tmp_path / "disk.yaml"
    exp.write_text("title: t\nmethod: [{fault: disk-fill, path: /tmp, megabytes: 1, duration: 1s}]\n"
                   "abort-when: [{elapsed: '> 1m'}]\n")
    out = _harness(tmp_path / "empty", "validate", str(exp))
    assert out.returncode == 2 and "unknown fault 'disk-fill'" in out.stderr

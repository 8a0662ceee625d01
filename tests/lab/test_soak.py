"""Soak (``harness soak``) and order independence, on the session lab. Behind the
``soak`` marker: not part of the default run (it deselects them).

    HARNESS_STATE_DIR=... .venv/bin/pytest --lab=auto -m soak tests/lab/test_soak.py -s

The short soak runs two short experiments twice, shuffled; the order test runs the
default lab suite (every experiment and scenario tagged ``lab``) in two different
orders on one lab and compares the verdicts.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness import soak as engine
from harness import verify as gate

from .conftest import ROOT

pytestmark = [pytest.mark.soak]

ZONE_BLINK = """\
title: a DB replica's zone is refused for 10 s (short, for the soak test)
tags: [soak-short]
load: {{locustfile: {root}/load/api.py, users: 10, spawn-rate: 10, warmup: 3s}}
steady-state: {{window: 5s, slo: {{availability: ">= 99%"}}}}
under-fault: {{slo: {{}}}}     # the cut zone's api replica fails requests until HAProxy drops it
method:
  - {{fault: zone-loss, zone: db-replica, mode: refuse, duration: 10s}}
abort-when:
  - {{error_ratio: "> 20%", for: 3s}}
  - {{elapsed: "> 3m"}}
recovery: {{within: 30s, window: 3s}}
expect:
  - recovers: {{within: 30s}}
"""


POD_KILL = """\
title: one api replica killed (short, for the soak test)
tags: [soak-short]
load: {{locustfile: {root}/load/api.py, users: 10, spawn-rate: 10, warmup: 3s}}
steady-state: {{window: 5s, slo: {{availability: ">= 99%"}}}}
method:
  - {{fault: pod-kill, selector: {{app: api}}, count: 1, duration: 8s}}
abort-when:
  - {{error_ratio: "> 60%", for: 10s}}
  - {{elapsed: "> 2m"}}
recovery: {{within: 20s, window: 3s}}
expect:
  - recovers: {{within: 20s, from: inject}}
"""


def test_short_soak(lab, tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "pod-kill.yaml").write_text(POD_KILL.format(root=ROOT))
    (suite / "zone-blink.yaml").write_text(ZONE_BLINK.format(root=ROOT))
    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "soak", "--loops", "2", "--shuffle", "--seed", "7",
                           "--dir", str(suite), "--lab-dir", lab.cfg.run_dir, "--report-dir", str(reports),
                           "soak-short"], capture_output=True, text=True, timeout=1800, cwd=ROOT)
    print(proc.stdout[-3000:], proc.stderr[-2000:])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    out = next(reports.glob("soak-*"))
    data = json.loads((out / "soak.json").read_text())
    assert len(data["runs"]) == 4 and data["flaky"] == {} and data["first_failure"] is None and data["passed"]
    assert all(r["status"] == "passed" for r in data["runs"])
    # each run carries the no-lasting-damage gauges after recovery; the zone was picked
    assert all(r["gauges"].get("db-half-open") is not None for r in data["runs"])
    assert any("step 0 zone" in r["params"] for r in data["runs"] if r["path"].endswith("zone-blink.yaml"))
    assert data["budget"]["requests"] > 0 and data["budget"]["burnt"] is not None
    # the soak's end against its start: every gauge read before the first run and after the last
    end = data["end_state"]
    assert end["verified"] and end["passed"], end["summary"]
    assert {r["gauge"] for r in end["measured"]["gauges"]} >= {"db-half-open", "memory-mb", "disk-mb"}
    html = (out / "soak.html").read_text()
    assert 'id="drift-db-half-open"' in html and 'id="drift-memory-mb"' in html
    md = (out / "soak.md").read_text()
    assert "loop 1" in md and "loop 2" in md and "Error budget" in md and "End against start: OK" in md


def test_order_does_not_matter(lab, tmp_path):
    items = gate.collect("lab", (str(ROOT / "experiments"), str(ROOT / "scenarios")))
    assert len(items) >= 2
    verdicts = []
    for name, order in (("sorted", items), ("reversed", list(reversed(items)))):
        s = engine.Soak(name, order, lambda item, ctx: engine.run_one(item, ctx, None, lab.cfg.run_dir,
                                                                       str(tmp_path / name)), loops=1)
        s.execute(progress=print)
        verdicts.append({r.path: (r.status, r.reasons) for r in s.runs})
    a, b = verdicts
    assert set(a) == set(b) == {str(i.path) for i in items}
    differ = {p: (a[p], b[p]) for p in a if a[p][0] != b[p][0]}
    assert not differ, f"verdicts depend on the order: {differ}"

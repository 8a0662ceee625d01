"""Lasting damage is a verdict: the no-lasting-damage expectation (on by default on the
lab) compares the lab's gauges before the first fault and after recovery.

A short cut of every zone (TCP reset, 3 s) is what left half-open database connections
behind before the lab's TCP keepalives (issue 15). On the session lab it leaves nothing
(the check passes, every gauge within tolerance); on a sibling lab started with the
test-only knob HARNESS_LAB_TCP_KEEPALIVES=off the same run fails on db-half-open, with
its before/after values and its tolerance.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.engine.run import Run
from harness.experiment.loader import load_experiment
from harness.lab.lab import Lab
from harness.targets.lab import LabTarget

from .conftest import ROOT, sibling_config

ALL_ZONES_BLINK = """\
title: every zone refused for 3 s
load: {{locustfile: {root}/load/api.py, users: 20, spawn-rate: 20, warmup: 3s}}
steady-state: {{window: 3s, slo: {{availability: ">= 80%"}}}}
# not judged under the cut: with every zone refused, requests can hang past the 3 s
# window (HAProxy retries), leaving it without data; what is under test is the aftermath
under-fault: {{slo: {{}}}}
method:
{steps}
abort-when:
  - {{elapsed: "> 3m"}}
recovery: {{within: 60s, window: 3s}}
{expect}
"""


def blink(cfg, cuts: int = 1, expect: str = "", duration: str = "3s", mode: str = "refuse") -> str:
    steps = []
    for n in range(cuts):
        steps += [f"  - {{fault: zone-loss, zone: {z}, mode: {mode}, duration: {duration}"
                  + (", concurrent: true}" if z != cfg.zones[-1] else "}") for z in cfg.zones]
        if n < cuts - 1:
            steps.append("  - pause: 8s")
    return ALL_ZONES_BLINK.format(root=ROOT, steps="\n".join(steps), expect=expect)


def run_on(target, tmp_path, text: str):
    path = tmp_path / f"exp-{time.monotonic_ns()}.yaml"
    path.write_text(text)
    return Run(load_experiment(path), target, report_dir=tmp_path / "reports", lock_wait=300).execute()


def damage(result):
    found = [c for c in result.checks if c.kind == "no-lasting-damage"]
    assert len(found) == 1, [c.kind for c in result.checks]
    return found[0]


def test_on_by_default_and_a_healed_lab_passes(lab, target, tmp_path):
    result = run_on(target, tmp_path, blink(lab.cfg))
    check = damage(result)
    rows = {r["gauge"]: r for r in check.measured["gauges"]}
    print(check.summary, {k: (r["before"], r["after"]) for k, r in rows.items()},
          check.measured["before_read_seconds"], check.measured["after_read_seconds"])
    assert result.verdict.status == "passed", result.verdict.reasons
    assert check.passed and check.verified, check.summary
    assert {"db-half-open", "db-connections", "replication-lag-mb", "replica-restarts", "memory-mb", "open-files",
            "disk-mb", "toxics", "iptables-rules"} <= set(rows)
    assert check.measured["alerts"]["new"] == []
    # the report shows before and after side by side
    html = (tmp_path / "reports" / result.run_id / "report.html").read_text()
    assert '<table class="damage">' in html and "after recovery" in html


def test_switched_off_with_a_reason(lab, target, tmp_path):
    text = blink(lab.cfg, expect='expect:\n  - no-lasting-damage: {off: "judged by another test"}')
    result = run_on(target, tmp_path, text)
    check = damage(result)
    assert check.passed and "switched off by the experiment (judged by another test)" in check.summary
    assert "gauges" not in check.measured


def test_a_tolerance_that_is_no_number_is_an_input_error(lab, target, tmp_path):
    from harness.engine.binding import bind
    from harness.errors import InvalidInput

    path = tmp_path / "bad.yaml"
    path.write_text(blink(lab.cfg, expect="expect:\n  - no-lasting-damage: {tolerances: {db-half-open: lots, "
                                          "no-such-gauge: 1}}"))
    with pytest.raises(InvalidInput) as err:
        bind(load_experiment(path), target)
    text = str(err.value)
    assert "db-half-open: tolerance 'lots'" in text and "no gauge 'no-such-gauge'" in text, text


@pytest.fixture
def leaky_lab(lab, monkeypatch):
    """A sibling lab started with the test-only knob: no TCP keepalives on its DB hops."""
    cfg = sibling_config(lab.cfg, 6, replicas=2)
    leaky = Lab(cfg)
    leaky.down()
    try:
        monkeypatch.setenv("HARNESS_LAB_TCP_KEEPALIVES", "off")
        try:
            leaky.up()
        finally:
            monkeypatch.delenv("HARNESS_LAB_TCP_KEEPALIVES")
        yield leaky
    finally:
        left = leaky.down()
        assert not left, left


LEAVES_A_TOXIC = """\
title: a step leaves a toxic on the db link behind (no fault owns it, so nothing reverts it)
load: {{locustfile: {root}/load/api.py, users: 10, spawn-rate: 10, warmup: 2s}}
steady-state: {{window: 3s, slo: {{availability: ">= 80%"}}}}
method:
  - {{fault: network-latency, link: dependency, latency: 1ms, duration: 1s}}
  - type: action
    name: add a toxic outside the harness
    provider:
      type: process
      path: {python}
      arguments: ["-c", "import json, urllib.request; urllib.request.urlopen(urllib.request.Request('{api}/proxies/db/toxics', data=json.dumps({{'name': 'left-behind', 'type': 'latency', 'attributes': {{'latency': 1}}}}).encode(), method='POST', headers={{'Content-Type': 'application/json'}}), timeout=5).read()"]
  - pause: 2s
abort-when:
  - {{elapsed: "> 2m"}}
recovery: {{within: 30s, window: 3s}}
expect:
  - no-lasting-damage: {{settle: 3s}}
"""


def test_a_toxic_left_behind_fails_the_run_with_the_gauge(lab, target, tmp_path):
    """Deterministic damage: a method step adds a Toxiproxy toxic that no fault owns."""
    import sys
    import urllib.request

    api = f"http://127.0.0.1:{lab.cfg.port('toxiproxy')}"
    try:
        result = run_on(target, tmp_path, LEAVES_A_TOXIC.format(root=ROOT, python=sys.executable, api=api))
        check = damage(result)
        rows = {r["gauge"]: r for r in check.measured.get("gauges", [])}
        assert result.verdict.status == "failed", result.verdict.reasons
        assert check.verified and not check.passed, check.summary
        assert rows["toxics"]["before"] == 0 and rows["toxics"]["after"] == 1 and not rows["toxics"]["ok"], rows["toxics"]
        assert "toxics 0 -> 1 (tolerance +0)" in check.summary, check.summary
        assert any("lasting damage: " in r and "toxics" in r for r in result.verdict.reasons), result.verdict.reasons
    finally:
        req = urllib.request.Request(f"{api}/proxies/db/toxics/left-behind", method="DELETE")
        try:
            urllib.request.urlopen(req, timeout=5).read()
        except OSError:
            pass


#: An application's idle pool in a zone: connections straight to the primary, each
#: sending a query every 0.2 s; a send during its zone's cut (TCP reset) is refused by
#: the zone's own kernel, so the connection dies on the client's side while PostgreSQL's
#: backend never hears of it: half-open, until a server keepalive finds the peer gone.
POOL_IN_A_ZONE = """\
import sys, time, psycopg
conns = [psycopg.connect(sys.argv[1], autocommit=True) for _ in range(int(sys.argv[2]))]
print("ready", flush=True)
deadline = time.time() + 120
while conns and time.time() < deadline:
    for c in list(conns):
        try:
            c.execute("SELECT 1")
        except psycopg.OperationalError:
            conns.remove(c)
    time.sleep(0.2)
"""


def test_the_leak_switched_back_on_fails_the_run_with_the_gauge(leaky_lab, tmp_path):
    import subprocess
    import sys

    from harness.lab import db

    cfg = leaky_lab.cfg
    haproxy = cfg.path("haproxy", "haproxy.cfg")
    assert "srvtcpka" not in haproxy.read_text(), "the knob did not take the keepalives off"
    # A 3 s reset of a zone holding an idle pool of 8 connections to the primary (in
    # another zone). Measured on a leaky lab: in the experiment 8 of 8 were left half-open
    # at the primary; cut by hand, with no load, each cut left 2-6 of them half-open at the
    # primary (the rest, likely mid-exchange: the primary's retransmission after the cut
    # met the client's reset and closed them), and they stay: with only the load's own
    # traffic, a cut of the primary's zone left none in 4 runs of 4 (HAProxy's closing
    # packets are retransmitted until the cut ends), so the pool is what makes this test
    # see the leak. Up to 3 runs, until one leaves more than the tolerance; a run that does
    # not must pass (and says so). With the keepalives on, the cut's damage is healed
    # (test_on_by_default_and_a_healed_lab_passes).
    primary_zone = db.zone_of(db.primary(cfg))
    zone = next(z for z in cfg.zones if z != primary_zone)
    text = ALL_ZONES_BLINK.format(root=ROOT, steps=f"  - {{fault: zone-loss, zone: {zone}, mode: refuse, duration: 3s}}",
                                  expect="")
    for attempt in range(3):
        pool = subprocess.Popen(["ip", "netns", "exec", cfg.netns(zone), sys.executable, "-c", POOL_IN_A_ZONE,
                                 db.dsn(cfg, primary_zone), "8"], stdout=subprocess.PIPE, text=True)
        try:
            assert pool.stdout.readline().strip() == "ready", "the pool did not connect"
            result = run_on(LabTarget(cfg), tmp_path, text)
        finally:
            pool.kill()
            pool.wait()
        if result.verdict.status != "passed":
            break
        left = {r["gauge"]: r for r in damage(result).measured.get("gauges", [])}["db-half-open"]
        print(f"attempt {attempt + 1} left no leak: {left}")
        assert left["ok"] and left["after"] - left["before"] <= left["allowed"], left
    check = damage(result)
    rows = {r["gauge"]: r for r in check.measured.get("gauges", [])}
    print(result.verdict.reasons, rows.get("db-half-open"))
    assert result.verdict.status == "failed", result.verdict.reasons
    assert check.verified and not check.passed, check.summary
    half = rows["db-half-open"]
    assert not half["ok"] and half["after"] - half["before"] > half["allowed"], half
    assert half["tolerance"] == "+2"
    # the verdict names the gauge, its before/after values and the tolerance
    assert f"db-half-open {half['before']:g} -> {half['after']:g}" in check.summary
    assert "(tolerance +2)" in check.summary
    assert any("lasting damage: " in r and "db-half-open" in r for r in result.verdict.reasons)


LEAVES_A_FILE = """\
title: a step writes {mb} MB under the lab's run dir and leaves it there ({name})
tags: [soak-leak]
load: {{locustfile: {root}/load/api.py, users: 5, spawn-rate: 5, warmup: 2s}}
steady-state: {{window: 3s, slo: {{availability: ">= 80%"}}}}
method:
  - {{fault: network-latency, link: dependency, latency: 1ms, duration: 1s}}
  - type: action
    name: write a file the lab keeps
    provider:
      type: process
      path: {python}
      arguments: ["-c", "import os; f = open('{path}', 'wb'); [f.write(b'x' * (1 << 20)) for _ in range({mb})]; f.flush(); os.fsync(f.fileno())"]
abort-when:
  - {{elapsed: "> 2m"}}
recovery: {{within: 30s, window: 3s}}
"""


def test_a_soak_fails_on_a_slow_leak_that_no_single_run_shows(lab, tmp_path, monkeypatch):
    """The soak's end against its start: each run leaves 150 MB on the lab's disk, inside
    the per-run tolerance (+256 MB), so every run passes; two runs leave 300 MB, and the
    soak fails on disk-mb with its start and end values and the tolerance."""
    import sys

    import harness.checks.damage as damage_mod
    from harness import soak as engine
    from harness import verify as gate
    from harness.report.soak import markdown

    monkeypatch.setattr(damage_mod, "SETTLE", 3.0)  # a file does not go away by waiting
    suite = tmp_path / "suite"
    suite.mkdir()
    files = [Path(lab.cfg.run_dir) / f"soak-leak-test-{n}.bin" for n in (1, 2)]
    for n, f in enumerate(files, 1):
        (suite / f"leak-{n}.yaml").write_text(LEAVES_A_FILE.format(root=ROOT, python=sys.executable, path=f, mb=150,
                                                                   name=f"run {n}"))
    try:
        items = gate.collect("soak-leak", (str(suite),))
        assert len(items) == 2
        s = engine.Soak("soak-leak", items, lambda item, ctx: engine.run_one(item, ctx, None, lab.cfg.run_dir,
                                                                             str(tmp_path / "runs")),
                        loops=1, damage=engine.damage_check(LabTarget(lab.cfg))).execute(progress=print)
        assert [r.status for r in s.runs] == ["passed", "passed"], [(r.status, r.reasons) for r in s.runs]
        for r in s.runs:  # each run grew the disk by its 150 MB, inside the per-run tolerance
            assert r.gauges["disk-mb"] > 0
        end = s.end_state
        rows = {r["gauge"]: r for r in end.measured.get("gauges", [])}
        print(end.summary)
        assert end.verified and not end.passed, end.summary
        disk = rows["disk-mb"]
        assert not disk["ok"] and disk["after"] - disk["before"] >= 300 and disk["tolerance"] == "+256", disk
        assert f"disk-mb {disk['before']:g} -> {disk['after']:g} MB (tolerance +256)" in end.summary, end.summary
        assert "replica-restarts" not in rows  # moved by faults on purpose: judged by each run
        assert not s.passed() and s.exit_code() == 1
        assert "End against start: NOT MET" in markdown(s)
    finally:
        for f in files:
            f.unlink(missing_ok=True)

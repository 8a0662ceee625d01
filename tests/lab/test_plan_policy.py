"""The plan's chaos policy enforced on runs (harness.plan.policy, docs/plan-judging.md).

The clock is injected (HARNESS_NOW), the announcements go to a receiver this test runs
and records (HARNESS_ANNOUNCE_URL). Runs are short and send no load."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.lab.conftest import ROOT

WEDNESDAY_10 = "2026-12-02T10:00:00"  # inside the plan's business hours (weekdays 09:00-18:00)
SATURDAY_10 = "2026-12-05T10:00:00"  # outside them: only the preconditions can refuse


def _experiment(tmp_path, plan: str = f"{ROOT}/plans/lab.yaml#api") -> Path:
    p = tmp_path / "latency.yaml"
    p.write_text(f"""\
title: 10 ms on the dependency link (a fault the plan lets start only outside business hours)
plan: {plan}
method:
  - {{fault: network-latency, link: dependency, latency: 10ms, duration: 2s}}
abort-when:
  - {{elapsed: "> 1m"}}
""")
    return p


@pytest.fixture
def receiver():
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            got.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/announce", got
    server.shutdown()


def _run(lab, tmp_path, exp: Path, now: str, url: str, *extra: str):
    env = {**os.environ, "HARNESS_NOW": now, "HARNESS_ANNOUNCE_URL": url}
    res = subprocess.run([str(Path(sys.executable).parent / "harness"), "run", "--lab-dir", lab.cfg.run_dir,
                          "--report-dir", str(tmp_path / "reports"), "--json", "--wait", "300", *extra, str(exp)],
                         capture_output=True, text=True, timeout=180, cwd=ROOT, env=env)
    return res, " ".join((res.stdout + res.stderr).split())  # rich wraps long lines


def test_business_hours_refuse_then_force_runs_and_journals_the_reason(lab, tmp_path, receiver):
    url, got = receiver
    exp = _experiment(tmp_path)
    res, out = _run(lab, tmp_path, exp, WEDNESDAY_10, url)
    assert res.returncode == 3, out
    assert "network-latency only outside business hours (mon/tue/wed/thu/fri 09:00-18:00)" in out, out
    assert "Wed 2026-12-02 10:00 is inside business hours" in out and "seed 002 §4.3" in out, out
    assert "Traceback" not in out and got == [], (out, got)  # refused before anything, nobody told "starting"

    res, out = _run(lab, tmp_path, exp, WEDNESDAY_10, url, "--force", "release rehearsal agreed with ops")
    assert res.returncode == 0, out
    summary = json.loads(res.stdout[res.stdout.index("{"):])
    journal = json.loads(Path(summary["journal"]).read_text())["harness"]
    forced = [e for e in journal["events"] if e["kind"] == "policy-forced"]
    assert forced and forced[0]["reason"] == "release rehearsal agreed with ops", journal["events"]
    assert "only outside business hours" in forced[0]["text"]
    assert journal["plan"]["policy"]["forced"] == "release rehearsal agreed with ops"
    # every other rule was checked and held: the fresh backup, monitoring, on call, announcement
    checked = {r["rule"]: r for r in journal["plan"]["policy"]["checked"]}
    assert {"a fresh full backup", "monitoring and alerting answering", "someone on call",
            "announcement before the run"} <= set(checked), checked
    assert [r["rule"] for r in checked.values() if not r["ok"]] == [
        "network-latency only outside business hours (mon/tue/wed/thu/fri 09:00-18:00)"], checked
    assert "newest full" in checked["a fresh full backup"]["detail"]
    phases = [m["phase"] for m in got]
    assert phases == ["before", "after"], got
    before, after = got
    assert "network-latency link=dependency" in before["what"] and before["where"]["kind"] == "lab"
    assert before["forced"] == "release rehearsal agreed with ops"
    assert after["result"] == "passed" and after["run"] == before["run"]


def test_unmet_preconditions_refuse_naming_each_rule_and_its_source(lab, tmp_path):
    plan = (ROOT / "plans/lab.yaml").read_text().replace('on-call: "harness team (lab)"', 'on-call: ""')
    assert 'on-call: ""' in plan
    (tmp_path / "nobody.yaml").write_text(plan)
    exp = _experiment(tmp_path, f"{tmp_path}/nobody.yaml#api")
    res, out = _run(lab, tmp_path, exp, SATURDAY_10, "http://127.0.0.1:9/closed")
    assert res.returncode == 3, out
    assert "someone on call: the plan names nobody on call (source: seed 002 §15.7" in out, out
    # the plan's own on-call, but nobody listening for the announcement
    res, out = _run(lab, tmp_path, _experiment(tmp_path), SATURDAY_10, "http://127.0.0.1:9/closed")
    assert res.returncode == 3, out
    assert "the announcement could not be delivered to http://127.0.0.1:9/closed" in out, out
    assert "seed 002 §15.7" in out and "Traceback" not in out, out

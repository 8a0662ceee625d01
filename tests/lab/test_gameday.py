"""GameDays on the lab: an unattended GameDay scores each inject from what really
happened (its postmortem's timeline is the journal's), and the facilitator's console
is driven through a pseudo-terminal (keys in, recorded events and screen out)."""
from __future__ import annotations

import json
import os
import re
import sys
from datetime import datetime
from pathlib import Path

import pexpect

from harness.gameday.plan import load_gameday
from harness.gameday.run import GameDayRun
from harness.gameday.score import incidents
from harness.lab.dependency import Dependency

from .conftest import CASES, ROOT

HARNESS = str(Path(sys.executable).parent / "harness")


def _gameday_file(tmp_path, scenario: Path, severity: str, extra: str = "") -> Path:
    p = tmp_path / "gameday.yaml"
    p.write_text(f"""title: test GameDay
date: "2026-12-02"
plan: {ROOT}/plans/lab.yaml
objectives: [payments are never lost]
participants:
  - {{name: A, role: facilitator}}
  - {{name: B, role: on-call}}
scenarios:
  - file: {scenario}
    severity: {severity}
    services: [api, payments]
    checkpoints:
      - {{at: detected, question: "Which signal told you first?"}}
{extra}""")
    return p


def _hhmmss(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%H:%M:%S")


def test_an_unattended_gameday_scores_each_inject_and_its_postmortem_follows_the_journal(target, tmp_path):
    gd = load_gameday(_gameday_file(tmp_path, CASES / "gameday-short-dependency.yaml", "P3"))
    record = GameDayRun(gd, target, report_dir=tmp_path / "reports", unattended=True, lock_wait=300).execute()
    (run,) = record["runs"]
    assert run["verdict"] == "passed", run["reasons"]
    run_dir = Path(run["run_dir"])
    events = json.loads((run_dir / "journal.json").read_text())["harness"]["events"]
    inject = next(e for e in events if e["kind"] == "inject")
    revert = next(e for e in events if e["kind"] == "revert")
    delivered = next(e for e in events if e["kind"] == "notification" and e.get("state") == "firing"
                     and e["t"] >= inject["t"])
    (inc,) = run["incidents"]
    # MTTD: the first delivered alert after the fault went in, as the journal has them
    assert abs(inc["mttd"]["value"] - (delivered["t"] - inc["injected_at"])) < 0.01, (inc, delivered)
    assert "DependencyDown -> warning" in inc["detected_by"]
    assert inc["mttd"]["passed"] is True and inc["mttd"]["target"] == 7200.0  # P3: respond 2 h (plan)
    assert inc["mttr"]["value"] is not None and inc["mttr"]["passed"] is True
    assert inc["mtta"]["passed"] is None and "unattended" in inc["mtta"]["text"]
    card = record["scorecard"]
    assert card["passed"], card["criteria"]
    continuity = card["criteria"][0]
    assert continuity["passed"] and continuity["value"] >= 0.99 and "requests served" in continuity["text"]

    # The postmortem's timeline: the journal's inject and revert, the detection at the
    # delivered alert's time, mitigation and resolution, in the template's sections.
    pm = (run_dir / "postmortem.md").read_text()
    for heading in ("# Incident report:", "## Summary", "## Timeline", "## Root cause", "## Impact", "## Actions",
                    "## Lessons"):
        assert heading in pm
    assert "- Severity: P3" in pm and "Window:" in pm and "Error budget:" in pm
    rows = re.findall(r"^\| (\d\d:\d\d:\d\d) \| ([^|]+?) \| ([^|]*?) \| (\w+) \|$", pm, re.M)
    got = [(t, kind) for t, kind, _, _ in rows if kind in ("fault injected", "fault reverted", "detected")]
    assert got == [(_hhmmss(inject["t"]), "fault injected"), (_hhmmss(delivered["t"]), "detected"),
                   (_hhmmss(revert["t"]), "fault reverted")], rows
    mitigated = next(r for r in rows if r[1].startswith("mitigated"))
    resolved = next(r for r in rows if r[1] == "resolved")
    assert resolved[0] >= _hhmmss(revert["t"]) and mitigated[0] >= _hhmmss(inject["t"])
    # The GameDay view: in the run's report and the day's page
    html = (run_dir / "report.html").read_text()
    assert 'id="gameday"' in html and "gameday-timeline" in html and 'data-kind="detected"' in html
    day = Path(record["out_dir"])
    assert "GameDay" in (day / "gameday.html").read_text() and (day / "scorecard.md").exists()

    # Counterpart: the same measured incident against a target it missed fails, with the number.
    strict = incidents(run["scenario"], "P3", json.loads((run_dir / "journal.json").read_text())["harness"]["faults"],
                       run["events"], {"mttd": 1.0, "mtta": None, "mttr": None}, (), True)
    assert strict[0]["mttd"]["passed"] is False
    assert strict[0]["mttd"]["text"].endswith("(> 1.0s)") and strict[0]["mttd"]["value"] > 1.0


def test_the_facilitator_drives_the_console_through_a_pseudo_terminal(lab, tmp_path):
    plan = _gameday_file(tmp_path, CASES / "gameday-held-dependency.yaml", "P2")
    env = dict(os.environ, HARNESS_STATE_DIR=os.environ.get("HARNESS_STATE_DIR", ""), COLUMNS="200", LINES="60")
    child = pexpect.spawn(HARNESS, ["gameday", "run", str(plan), "--lab-dir", str(lab.cfg.run_dir), "--report-dir",
                                    str(tmp_path / "reports"), "--wait", "300"],
                          env=env, cwd=str(ROOT), dimensions=(60, 200), encoding="utf-8", timeout=400)
    screen = open(tmp_path / "screen.log", "w")
    child.logfile_read = screen
    try:
        child.expect(r"dependency-down \(\d+s\)")  # the active faults panel: the fault is in
        child.expect("availability")  # the SLI panel
        for key, shown in (("d", r"\* detected"), ("a", r"\* acknowledged"), ("e", r"\* escalated")):
            child.send(key)
            child.expect(shown)
        child.expect("Which signal told you first")  # the plan's checkpoint after 'detected'
        child.send("n")
        child.send("queue depth looks fine")
        child.expect("note> queue depth looks fine")
        child.send("\r")
        child.expect(r"\* note")
        child.send("m")
        child.expect(r"\* mitigated")
        child.send("q")  # emergency stop: every fault reverted
        child.expect(r"\* stop")
        child.expect("GameDay scorecard: FAILED")
        child.expect(pexpect.EOF)
    finally:
        child.close()
        screen.close()
    assert child.exitstatus == 130, (tmp_path / "screen.log").read_text()[-3000:]
    (day,) = (tmp_path / "reports").glob("*-gameday-*")
    record = json.loads((day / "gameday.json").read_text())
    kinds = [e["kind"] for e in record["events"]]
    assert kinds == ["detected", "checkpoint", "acknowledged", "escalated", "note", "mitigated", "stop"], kinds
    assert next(e for e in record["events"] if e["kind"] == "note")["text"] == "queue depth looks fine"
    (run,) = record["runs"]
    assert run["verdict"] == "interrupted"
    faults = json.loads((Path(run["run_dir"]) / "journal.json").read_text())["harness"]["faults"]
    assert faults and all(f["reverted_at"] is not None for f in faults)
    assert Dependency(lab.cfg).ok()  # the stop brought the dependency back
    inc = run["incidents"][0]
    # what the keys recorded, measured from the inject, in the scorecard
    assert 0 < inc["mttd"]["value"] < inc["mtta"]["value"] < inc["mttr"]["value"]
    assert inc["escalation"]["passed"] is True
    pm = (Path(run["run_dir"]) / "postmortem.md").read_text()
    assert "queue depth looks fine" in pm and "emergency stop" in pm and "postmortem mandatory for P2" in pm

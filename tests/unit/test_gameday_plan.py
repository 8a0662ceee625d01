"""GameDay plans: validation with file:line:col, targets from the plan's severities,
and scoring from records (detection, acknowledgement, escalation against the chain)."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import InvalidInput
from harness.gameday.plan import load_gameday
from harness.gameday.score import escalation, incidents

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_gameday_loads_with_the_plans_targets():
    gd = load_gameday(ROOT / "gamedays/2026-q4.yaml")
    by = {s.experiment.name: s for s in gd.scenarios}
    assert set(by) == {"zone-down", "db-primary-down", "payment-api-down", "latency-and-cpu"}
    assert by["db-primary-down"].targets == {"mttd": 900.0, "mtta": 900.0, "mttr": 3600.0}  # P1: 15 m / 1 h
    assert by["zone-down"].escalation[1] == (1800.0, "team lead")  # P2: lead after 30 m
    assert gd.role("facilitator") == ["Aiko Tanaka"] and gd.postmortem_required == ("P1", "P2")
    assert str(gd.continuity) == ">= 99%"


def test_bad_gameday_plans_say_where(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(f"""title: bad
date: "2026-13-45"
plan: {ROOT}/plans/lab.yaml
participants:
  - {{name: X, role: janitor}}
scenarios:
  - {{file: {ROOT}/scenarios/zone-down.yaml, severity: P9}}
  - {{file: nope.yaml, severity: P1}}
success-criteria:
  mttd: fast
""")
    with pytest.raises(InvalidInput) as exc:
        load_gameday(p)
    text = "\n".join(map(str, exc.value.problems))
    assert "bad.yaml:2:" in text and "is not YYYY-MM-DD" in text
    assert "bad.yaml:5:15: participants.0.role: 'janitor' is not one of" in text
    assert "bad.yaml:7:" in text and "severity 'P9' is not one of the plan's (P1, P2, P3, P4)" in text
    assert "bad.yaml:8:6: scenario file 'nope.yaml' not found" in text
    assert text.count("got 'fast'") == 1


def _events(*pairs):
    return [{"t": t, "kind": k, "text": "", "by": "facilitator", "scenario": "s"} for t, k in pairs]


def test_each_inject_is_scored_from_the_first_events_after_it():
    faults = [{"id": "f1", "description": "zone-loss", "injected_at": 100.0, "reverted_at": 160.0},
              {"id": "f2", "description": "cpu-stress", "injected_at": 120.0, "reverted_at": 150.0}]
    ev = _events((110, "detected"), (115, "acknowledged"), (125, "detected"), (140, "mitigated"))
    chain = ((0.0, "on-call"), (30.0, "team lead"))
    a, b = incidents("s", "P2", faults, ev, {"mttd": 12.0, "mtta": 20.0, "mttr": 60.0}, chain, unattended=False)
    assert a["mttd"]["value"] == 10.0 and a["mttd"]["passed"] and a["mtta"]["value"] == 15.0
    assert b["mttd"]["value"] == 5.0 and b["mtta"] == {"value": None, "target": 20.0, "passed": False,
                                                       "text": "not recorded"}
    assert a["mttr"]["value"] == 40.0 and a["mttr"]["passed"]
    # still open when the team lead was due (30 s) and never escalated
    assert a["escalation"]["passed"] is False and "never escalated" in a["escalation"]["text"]
    assert b["escalation"]["passed"] is True  # restored after 20 s, before the lead was due


def test_escalation_late_and_in_time():
    chain = ((0.0, "on-call"), (1800.0, "team lead"))
    assert escalation(chain, 60.0, 1700.0, 4000.0, False)["passed"] is True
    late = escalation(chain, 60.0, 2000.0, 4000.0, False)
    assert late["passed"] is False and "(> 30.0m, when team lead is due)" in late["text"]

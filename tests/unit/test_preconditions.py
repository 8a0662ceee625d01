"""An expectation that cannot judge a fresh fault (e.g. its alert is still firing from an
earlier event) makes the run 'not in steady state' before anything is injected."""
from pathlib import Path

from harness.checks.base import Check, CheckResult
from harness.engine.run import Run
from harness.experiment.loader import load_experiment
from harness.faults.base import Fault
from harness.targets import registry
from harness.targets.base import Target

INJECTED: list = []


@registry.fault("fake")
class Boom(Fault):
    kind = "zone-loss"

    def inject(self, state):
        INJECTED.append(state)

    def revert(self, state):
        pass


@registry.check("fake")
class StillFiring(Check):
    kind = "alert-fires"

    def precondition(self, timeout):
        return "alert X was still firing from an earlier event"

    def run(self, clock):
        return CheckResult(self.kind, True, "")


class FakeTarget(Target):
    kind = "fake"

    def describe(self):
        return {"kind": "fake"}

    @classmethod
    def from_description(cls, d):
        return cls()


def test_unmet_precondition_injects_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "state"))
    exp = tmp_path / "e.yaml"
    exp.write_text("""\
title: t
method: [{fault: zone-loss, zone: a, duration: 1s}]
abort-when: [{elapsed: "> 1m"}]
expect: [{alert-fires: {alert: X, within: 10s}}]
""")
    result = Run(load_experiment(exp), FakeTarget(), report_dir=tmp_path / "r").execute()
    assert result.verdict.status == "not-steady"
    assert "still firing" in result.verdict.reasons[0] and "nothing was injected" in result.verdict.reasons[0]
    assert INJECTED == [] and result.faults == []
    assert Path(result.journal_path).exists()

"""Scenario steps at offsets (at:) and on conditions (when:), on the engine's own run:
same journal, same reverts, waits that time out fail closed."""
from __future__ import annotations

import time

import pytest

from harness.engine import context
from harness.engine.run import Run
from harness.errors import InvalidInput
from harness.experiment.loader import load_experiment
from harness.faults.base import Fault
from harness.targets import registry

from .support import NoTarget

TIMES: list[tuple[str, str, float]] = []


@registry.fault("timed")
class TimedFault(Fault):
    """Records when it acts; 'signal' also tells the run an alert fired (as the run's
    alert watcher would), so that a when: on it can be met without Prometheus."""

    kind = "zone-loss"

    def inject(self, state):
        TIMES.append(("inject", self.params.get("zone"), time.time()))
        if self.params.get("zone") == "signal":
            context.current().event("alert", "ZoneDown firing", alert="ZoneDown", state="firing")

    def revert(self, state):
        TIMES.append(("revert", self.params.get("zone"), time.time()))


class TimedTarget(NoTarget):
    kind = "timed"


def _run(tmp_path, monkeypatch, method: str):
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "state"))
    TIMES.clear()
    p = tmp_path / "s.yaml"
    p.write_text("title: a scenario\nmethod:\n" + method + "abort-when: [{elapsed: '> 1m'}]\n")
    run = Run(load_experiment(p), TimedTarget(), report_dir=tmp_path)
    return run, run.execute()


def _at(kind, zone):
    return next(t for k, z, t in TIMES if k == kind and z == zone)


def test_steps_at_offsets_overlap_and_a_revert_step_ends_a_labelled_fault(tmp_path, monkeypatch):
    run, result = _run(tmp_path, monkeypatch,
                       "  - {fault: zone-loss, zone: a, label: first}\n"
                       "  - {fault: zone-loss, zone: b, at: 0.6s, duration: 0.6s}\n"
                       "  - {revert: first, at: 1.0s}\n")
    assert result.verdict.status == "passed", result.verdict.reasons
    a0, b0 = _at("inject", "a"), _at("inject", "b")
    assert 0.5 <= b0 - a0 < 0.9  # b at +0.6 s while a is still in (overlap)
    assert 0.9 <= _at("revert", "a") - a0 < 1.3  # the revert step at +1.0 s
    assert 0.55 <= _at("revert", "b") - b0 < 0.9  # b's own duration
    assert not run.journal.live
    assert [e["kind"] for e in result.events if e["kind"] in ("inject", "revert")] == \
        ["inject", "inject", "revert", "revert"]


def test_a_step_waits_for_an_alert_then_starts(tmp_path, monkeypatch):
    _, result = _run(tmp_path, monkeypatch,
                     "  - {fault: zone-loss, zone: signal, duration: 1s, concurrent: true}\n"
                     "  - {fault: zone-loss, zone: next, duration: 0.2s, when: {alert-fires: ZoneDown, timeout: 5s}}\n")
    assert result.verdict.status == "passed", result.verdict.reasons
    cond = [e for e in result.events if e["kind"] == "condition"]
    assert cond and "alert ZoneDown firing" in cond[0]["text"]
    assert _at("inject", "next") >= _at("inject", "signal")


def test_a_wait_that_times_out_fails_closed_and_reverts_everything(tmp_path, monkeypatch):
    run, result = _run(tmp_path, monkeypatch,
                       "  - {fault: zone-loss, zone: a, label: held}\n"
                       "  - {fault: zone-loss, zone: b, duration: 1s, when: {alert-fires: NeverFires, timeout: 0.5s}}\n"
                       "  - {revert: held}\n")
    assert result.verdict.status == "failed", result.verdict.reasons
    reason = result.verdict.reasons[0]
    assert "step 2" in reason and "s.yaml:" in reason and "alert NeverFires to fire" in reason
    assert "never seen" in reason and "every fault injected so far was reverted" in reason
    assert [(k, z) for k, z, _ in TIMES] == [("inject", "a"), ("revert", "a")]  # b never went in
    assert not run.journal.live


def test_slo_back_without_load_and_unknown_labels_are_input_errors(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("title: bad\nmethod:\n"
                 "  - {fault: zone-loss, zone: a, label: one}\n"
                 "  - {revert: two, when: {slo-back: availability}}\n"
                 "  - {pause: 1s, when: {alert-fires: X, window: 5s}}\n"
                 "  - {fault: zone-loss, zone: b, at: soon, duration: 1s}\n"
                 "abort-when: [{elapsed: '> 1m'}]\n")
    with pytest.raises(InvalidInput) as exc:
        load_experiment(p)
    text = "\n".join(str(x) for x in exc.value.problems)
    assert "bad.yaml:4:" in text and "no fault step is labelled 'two'" in text
    assert "slo-back reads the users' SLIs" in text
    assert "bad.yaml:5:" in text and "'window' goes with slo-back" in text
    assert "bad.yaml:6:33: expected a duration" in text  # at: soon
    assert "bad.yaml:3:5: a fault with no 'duration' must be reverted by a later step" in text


def test_a_plain_method_compiles_as_before():
    from harness.engine.compile import compile_method
    from harness.experiment.model import Experiment, Step
    from pathlib import Path

    exp = Experiment(Path("x.yaml"), "x", method=(Step("fault", "zone-loss", {"zone": "a"}, 1.0),))
    names = [a["name"] for a in compile_method(exp)]
    assert names[0].startswith("inject") and "run the scenario's schedule" not in names
    exp2 = Experiment(Path("x.yaml"), "x", method=(Step("fault", "zone-loss", {"zone": "a"}, 1.0, at=2.0),))
    assert [a["name"] for a in compile_method(exp2)] == ["run the scenario's schedule", "await recovery"]


def test_a_scheduled_method_refuses_chaos_toolkit_activities(tmp_path):
    p = tmp_path / "mixed.yaml"
    p.write_text("title: mixed\nmethod:\n"
                 "  - {fault: zone-loss, zone: a, duration: 1s, at: 1s}\n"
                 "  - {type: action, name: noop, provider: {type: process, path: 'true'}}\n"
                 "abort-when: [{elapsed: '> 1m'}]\n")
    with pytest.raises(InvalidInput) as exc:
        load_experiment(p)
    assert "mixed.yaml:4:5: a scenario with at:/when:/revert: steps runs only harness steps" in str(exc.value.problems[0])

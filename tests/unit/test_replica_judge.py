"""The `replicas` judgement shared by the lab and Kubernetes checks, on synthetic
streams of samples (the real scaling is exercised by tests/lab and tests/k8s)."""
from __future__ import annotations

from harness.checks.base import RunClock
from harness.checks.replicas import ReplicaJudge

PARAMS = {"at-least": 6, "at-most": 6, "never-below": 3, "back-to": 3}


def _play(samples, params=PARAMS, revert_at=None, within=60.0, cap_name="maxReplicas"):
    """samples: (t, desired, current[, max]) with t in seconds after the injection."""
    clock = RunClock(started_at=0.0)
    clock.injected_at = 1000.0
    judge = ReplicaJudge("replicas", "hpa api", params, within, clock.injected_at, cap_name=cap_name)
    for t, desired, current, *cap in samples:
        now = clock.injected_at + t
        if revert_at is not None and t >= revert_at and not clock.reverted.is_set():
            clock.reverted_at = clock.injected_at + revert_at
            clock.reverted.set()
        judge.observe(now, {"desired": desired, "current": current, "max": cap[0] if cap else None}, clock)
        if judge.done(now, clock):
            break
    return judge.result(), t


def test_scale_out_to_max_and_back_in_passes_with_its_timings():
    res, _ = _play([(0, 3, 3), (10, 6, 3), (14, 6, 6), (40, 6, 6), (55, 3, 6), (58, 3, 3)], revert_at=40)
    assert res.passed, res.summary
    assert res.measured["seconds_to_desired"] == 10 and res.measured["seconds_to_scale_out"] == 14
    assert res.measured["seconds_to_scale_in"] == 18
    assert res.measured["peak"] == 6 and res.measured["lowest"] == 3


def test_desired_alone_is_not_a_scale_out():
    res, _ = _play([(0, 3, 3), (10, 6, 3), (61, 6, 3), (70, 6, 3)], params={"at-least": 6}, revert_at=65)
    assert not res.passed and "never reached 6" in res.summary and "current 3" in res.summary


def test_going_above_the_maximum_or_under_the_minimum_fails_with_when():
    res, _ = _play([(0, 3, 3), (5, 7, 7), (30, 2, 2), (31, 3, 3)], revert_at=20)
    assert not res.passed
    assert "desired 7, above the maximum 6 at +5s" in res.summary
    assert "desired 2, below the minimum 3 at +30s" in res.summary


def test_an_autoscaler_capped_below_the_bound_fails_at_once_with_its_cap():
    res, t = _play([(0, 1, 1, 2), (10, 2, 1, 2), (12, 2, 2, 2), (50, 2, 2, 2)], params={"at-least": 4})
    assert not res.passed and t == 12  # no waiting out `within`
    assert "its maxReplicas is 2: it scaled to 2 and cannot reach 4" in res.summary


def test_not_settling_back_after_the_revert_fails():
    res, _ = _play([(0, 3, 3), (10, 6, 6), (20, 6, 6), (81, 5, 5), (90, 5, 5)], revert_at=20)
    assert not res.passed and "did not settle back to 3 within 60.0s of the revert" in res.summary


def test_bounds_alone_watch_until_the_revert():
    # at-most with no at-least: nothing decides early, the watch lasts until the revert
    res, t = _play([(0, 3, 3), (10, 4, 4), (30, 4, 4), (31, 4, 4)], params={"at-most": 6}, revert_at=30)
    assert res.passed and t == 30


def test_bounds_watched_blind_are_could_not_verify():
    # the counts cannot be read for 10 s in the middle: "never above/below" is unproven
    samples = [(0, 3, 3)] + [(t, None, None) for t in range(1, 12)] + [(12, 3, 3), (45, 3, 3)]
    res, _ = _play(samples, params={"at-most": 6, "never-below": 3}, revert_at=40)
    assert not res.passed and not res.verified
    assert res.summary.startswith("could not verify") and "11 missed" in res.evidence[0]


def test_a_breach_seen_before_going_blind_still_fails_as_a_breach():
    samples = [(0, 3, 3), (2, 8, 3)] + [(t, None, None) for t in range(3, 15)] + [(45, 3, 3)]
    res, _ = _play(samples, params={"at-most": 6}, revert_at=40)
    assert not res.passed and res.verified and "above the maximum 6" in res.summary


# -- mismatch-at-most: "HPA desired != current longer than the plan allows" (seed 002 §7.2)

def test_an_autoscaler_asking_for_replicas_it_cannot_get_fails_with_how_long():
    # desired 6 from +10 s, current stuck at 3 until +52 s: 42 s of mismatch, 30 s allowed
    samples = [(0, 3, 3), (10, 6, 3)] + [(t, 6, 3) for t in range(11, 52)] + [(52, 6, 6), (60, 3, 3), (61, 3, 3)]
    res, _ = _play(samples, params={"mismatch-at-most": "30s"}, revert_at=55)
    assert not res.passed and res.verified
    assert "desired and current differed for 41.0s from +10s (desired 6, current 3; allowed 30.0s)" in res.summary
    assert res.measured["longest_mismatch_s"] == 41 and res.measured["mismatch_at_most_s"] == 30


def test_short_mismatches_while_scaling_pass_and_report_the_longest():
    # measured from the first reading that shows a mismatch to the last one that does
    samples = [(0, 3, 3), (10, 5, 3), (13, 5, 3), (14, 5, 5), (20, 6, 5), (21, 6, 5), (22, 6, 6), (40, 6, 6),
               (45, 3, 6), (46, 3, 6), (48, 3, 3)]
    res, t = _play(samples, params={"mismatch-at-most": 30.0, "back-to": 3}, revert_at=40)
    assert res.passed, res.summary
    assert res.measured["longest_mismatch_s"] == 3 and t == 48
    assert "desired != current for 3.0s at most (allowed 30.0s)" in res.summary


def test_mismatch_is_watched_after_the_revert_until_the_counts_agree():
    # scale-in that never completes: desired 3, current 6 from the revert on
    samples = [(0, 6, 6), (20, 3, 6)] + [(t, 3, 6) for t in range(21, 70)]
    res, t = _play(samples, params={"mismatch-at-most": "20s"}, revert_at=20, within=45)
    assert not res.passed and "desired 3, current 6" in res.summary and t >= 41

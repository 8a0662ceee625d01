"""How a soak judges its loops: flaky = the verdict changed while the parameters did
not; a verdict that changed with the parameters is not flaky; the first failure and
the whole soak's error budget come from the runs' own records."""
from __future__ import annotations

from pathlib import Path

from harness.soak import Soak, SoakRun
from harness.verify import Item


def _soak(plan: dict[str, list[tuple[str, dict]]], loops: int) -> Soak:
    items = [Item("experiment", Path(p), p, None) for p in plan]

    def runner(item, ctx):
        status, params = plan[str(item.path)][ctx["loop"] - 1]
        return SoakRun(ctx["loop"], ctx["position"], str(item.path), item.title, status,
                       0 if status == "passed" else 1, [] if status == "passed" else [f"{item.path} broke"],
                       params, 1000.0 + ctx["loop"], 1.0, gauges={"rss-mb": 100.0 + ctx["loop"]},
                       requests=1000, failed=1 if status == "passed" else 50, objective=0.99)

    return Soak("t", items, runner, loops=loops).execute()


def test_flaky_is_named_and_first_failure_found():
    s = _soak({"a.yaml": [("passed", {}), ("failed", {}), ("passed", {})],
               "b.yaml": [("passed", {"zone": "a"}), ("failed", {"zone": "b"}), ("failed", {"zone": "b"})]}, 3)
    flaky = s.flaky()
    assert list(flaky) == ["a.yaml"] and "failed vs passed" in flaky["a.yaml"] and "loop 2: failed" in flaky["a.yaml"]
    first = s.first_failure()
    assert (first.loop, first.path) == (2, "a.yaml")
    assert not s.passed() and s.exit_code() == 1
    b = s.budget()
    assert b["requests"] == 6000 and b["failed"] == 3 * 1 + 3 * 50 and abs(b["allowed"] - 60.0) < 1e-6
    assert abs(b["burnt"] - 153 / 60) < 1e-6
    assert [v for _, v in s.drift()["rss-mb"]] == [101.0, 101.0, 102.0, 102.0, 103.0, 103.0]


def test_all_passed():
    s = _soak({"a.yaml": [("passed", {}), ("passed", {})]}, 2)
    assert s.passed() and s.exit_code() == 0 and s.flaky() == {} and s.first_failure() is None


class _Gauges:
    """A target's no-lasting-damage check whose readings are scripted: what the soak's
    end-against-start judgement is given (the lab's real gauges: tests/lab/test_damage.py)."""

    def __init__(self, readings, alerts=None, fail_at_end: str | None = None):
        from harness.checks.damage import Gauge, LastingDamage

        outer = self

        class Check(LastingDamage):
            gauges = (Gauge("rss-mb", "MB", "25%", "memory"), Gauge("open-files", "", 10, "fds"),
                      Gauge("restarts", "", 0, "restarts after the revert", baseline="revert"))

            def read(self):
                if fail_at_end and outer.reads:
                    raise OSError(fail_at_end)
                outer.reads += 1
                return dict(readings[min(outer.reads - 1, len(readings) - 1)])

        self.reads = 0
        self.check = Check(type("T", (), {"kind": "lab"})(), {})


def _soak_with(damage, loops=2, warmup_loops=1) -> Soak:
    items = [Item("experiment", Path("a.yaml"), "a", None)]

    def runner(item, ctx):
        return SoakRun(ctx["loop"], ctx["position"], "a.yaml", "a", "passed", 0, [], {}, 0.0, 1.0)

    return Soak("t", items, runner, loops=loops, damage=damage, warmup_loops=warmup_loops).execute()


def test_a_slow_leak_no_run_shows_fails_the_soak_at_its_end(monkeypatch):
    import harness.checks.damage as d

    monkeypatch.setattr(d, "SETTLE", 0.0)
    # read before the first run (cold), after the warm-up loop (the start), after the last run
    g = _Gauges([{"rss-mb": 100.0, "open-files": 50, "restarts": 0}, {"rss-mb": 104.0, "open-files": 50, "restarts": 0},
                 {"rss-mb": 140.0, "open-files": 52, "restarts": 9}])
    s = _soak_with(g.check, loops=3)
    assert g.reads == 3 and s.start_phase == "after loop 1 (warm-up)" and s.cold_start["rss-mb"] == 100.0
    assert not s.end_state.passed and s.end_state.verified
    assert "rss-mb 104 -> 140 MB (tolerance 25%)" in s.end_state.summary, s.end_state.summary
    assert "phase: after loop 1 (warm-up), and after the last run" in s.end_state.evidence
    # restarts are moved by faults on purpose: judged per run, not at the soak's end
    assert "restarts" not in s.end_state.summary
    assert {r["gauge"] for r in s.end_state.measured["gauges"]} == {"rss-mb", "open-files"}
    assert not s.passed() and s.exit_code() == 1
    from harness.report.soak import markdown

    md = markdown(s)
    assert "End against start: NOT MET" in md and "| rss-mb | 100, 104 MB | 140 MB | 25% | **NO** |" in md, md
    assert "Start: after loop 1 (warm-up)." in md


def test_the_first_loops_warm_up_is_not_a_leak_but_a_cold_judgement_would_call_it_one(monkeypatch):
    """Measured on the lab: pools empty before the first run, warm after it (4 -> 38 idle
    backends). The start is read after the warm-up loop; with none (or one loop) it is
    the cold reading, and the same growth fails."""
    import harness.checks.damage as d

    monkeypatch.setattr(d, "SETTLE", 0.0)
    readings = [{"rss-mb": 100.0, "open-files": 50, "restarts": 0}, {"rss-mb": 140.0, "open-files": 80, "restarts": 0},
                {"rss-mb": 142.0, "open-files": 82, "restarts": 0}]
    warm = _soak_with(_Gauges(readings).check, loops=2)
    assert warm.end_state.passed and warm.passed(), warm.end_state.summary
    cold = _soak_with(_Gauges(readings[:1] + readings[2:]).check, loops=2, warmup_loops=0)
    assert cold.start_phase == "before the first run (cold lab)"
    assert not cold.end_state.passed and "open-files 50 -> 82" in cold.end_state.summary, cold.end_state.summary
    one = _soak_with(_Gauges(readings[:1] + readings[2:]).check, loops=1)  # no loop after the warm-up one
    assert one.start_phase == "before the first run (cold lab)" and not one.passed()


def test_an_end_within_tolerance_passes_and_an_unreadable_end_fails(monkeypatch):
    import harness.checks.damage as d

    monkeypatch.setattr(d, "SETTLE", 0.0)
    monkeypatch.setattr(d, "READ_RETRY", 0.0)  # tried again: the next test
    ok = _Gauges([{"rss-mb": 100.0, "open-files": 50, "restarts": 0}, {"rss-mb": 120.0, "open-files": 58, "restarts": 3}])
    s = _soak_with(ok.check)
    assert s.end_state.passed and s.passed() and s.exit_code() == 0
    blind = _Gauges([{"rss-mb": 100.0, "open-files": 50, "restarts": 0}], fail_at_end="ps: no such process")
    s = _soak_with(blind.check)
    assert not s.end_state.verified and "could not be read at the end: ps: no such process" in s.end_state.summary
    assert not s.passed() and s.exit_code() == 1


def test_disk_leaves_out_only_the_bounded_write_ahead_logs():
    """pg_wal, etcd's member/wal and Prometheus' head are bounded by their own settings;
    anything else of the same name (a backup repo's 'wal', Prometheus' blocks) counts."""
    import os

    from harness.targets.lab.checks.damage import _bounded_wal

    assert _bounded_wal("/lab/db/a/data", "pg_wal")
    assert _bounded_wal("/lab/etcd/a/member", "wal")
    assert _bounded_wal(os.path.join("/lab", "prometheus", "data"), "wal")
    assert _bounded_wal(os.path.join("/lab", "prometheus", "data"), "chunks_head")
    assert not _bounded_wal("/lab/pgbackrest/repo/archive", "wal")
    assert not _bounded_wal(os.path.join("/lab", "prometheus", "data"), "01JABCDEF")
    assert not _bounded_wal("/lab/db/a", "chunks_head")


def test_a_reading_that_fails_once_is_tried_again_and_one_that_stays_unreadable_fails(monkeypatch):
    """CI: Prometheus took more than 2 s to answer /api/v1/alerts once, just after a
    failover, and the whole run was "could not verify". A reading that comes good when
    tried again is judged (and named in the evidence); one unreadable for READ_RETRY is not."""
    import harness.checks.damage as d

    monkeypatch.setattr(d, "SETTLE", 0.0)
    monkeypatch.setattr(d, "READ_RETRY", 1.5)
    calls = {"n": 0}


    g = _Gauges([{"rss-mb": 100.0, "open-files": 50, "restarts": 0}])
    real = g.check.read

    def read_failing_second_time():
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("timed out")
        return real()

    g.check.read = read_failing_second_time
    g.check.before_method()
    result = g.check.judge_now(settle=0.0, grace=0.0)
    assert result.passed and result.verified, result.summary
    assert calls["n"] == 3 and result.measured["read_retries"] == ["after recovery: timed out"]
    assert any("came good when tried again" in e for e in result.evidence), result.evidence

    dead = _Gauges([{"rss-mb": 100.0, "open-files": 50, "restarts": 0}], fail_at_end="timed out")
    dead.check.before_method()
    result = dead.check.judge_now(settle=0.0, grace=0.0)
    assert not result.verified and not result.passed
    assert "could not be read at the end: timed out (unreadable for" in result.summary, result.summary

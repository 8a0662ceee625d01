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

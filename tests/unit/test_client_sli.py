import pytest

from harness.sli.client import ClientSeries


def rec(t, n, fail=None, ms=10.0):
    from harness.load.records import bucket  # the same bucketing the child uses

    return {"t": t, "n": n, "fail": fail or {}, "hist": {bucket(ms): n} if n else {}}


def test_window_ratios_and_quantiles():
    s = ClientSeries()
    for i in range(10):
        s.add(rec(100 + i * 0.1, 10, ms=10.0))
    s.add(rec(101.05, 10, fail={"http5xx": 5}, ms=900.0))
    w = s.window(100.0, 101.1)
    assert w.requests == 100 - 10 + 10 or w.requests == 100  # (100.0 excluded: interval ended at 100.0)
    assert w.failed == 5
    assert w.error_ratio == pytest.approx(5 / w.requests)
    assert w.availability == pytest.approx(1 - 5 / w.requests)
    # p50 sits in the 10 ms bucket, p99 in the 900 ms one; never below the truth
    assert 0.010 <= w.quantile(0.5) < 0.0106
    assert 0.9 <= w.quantile(0.99) < 0.95


def test_empty_window_has_no_data():
    w = ClientSeries().window(0, 10)
    assert w.availability is None and w.quantile(0.99) is None and w.sli("latency_p99") is None


def test_timeouts_are_their_own_sli():
    s = ClientSeries()
    s.add(rec(1.0, 100, fail={"timeout": 6, "http5xx": 1}))
    assert s.window(0, 2).timeout_ratio == pytest.approx(0.06)


def test_classify_failures():
    from harness.load.records import classify

    class R:
        status_code = 503

    assert classify(TimeoutError("timed out"), None) == "timeout"
    assert classify(Exception("HTTP 503"), R()) == "http5xx"
    assert classify(ConnectionRefusedError("refused"), None) == "connection"


def test_a_clock_stepped_back_keeps_the_series_ordered():
    s = ClientSeries()
    for i in range(10):
        s.add({"t": 100.0 + i * 0.1, "n": 1, "fail": {}, "hist": {"0": 1}})
    for i in range(10):  # the wall clock stepped back 0.5 s: stamps overlap the past
        s.add({"t": 100.4 + i * 0.1, "n": 1, "fail": {"http5xx": 1}, "hist": {"0": 1}})
    assert s._t == sorted(s._t)
    w = s.window(100.95, 101.35)  # only records after the overlap: all the failed ones
    assert w.requests == 4 and w.failed == 4

"""The guard trips on the first load record that shows a breach held for `for`."""
import threading

from harness.engine.guard import Guard
from harness.experiment.model import AbortCondition
from harness.quantities import parse_objective
from harness.sli.client import ClientSeries


def cond(text="> 20%", hold=0.0, window=1.0):
    return AbortCondition(f"error_ratio {text}", "error_ratio", parse_objective(text), hold, window)


def feed(guard, series, t, n, failed):
    r = {"t": t, "n": n, "fail": {"http5xx": failed} if failed else {}, "hist": {}}
    series.add(r)
    guard.on_load_record(r)


def test_trips_once_with_the_observed_value():
    s = ClientSeries()
    trips = []
    g = Guard([cond()], s, None, trips.append)
    g.arm()
    for i in range(10):
        feed(g, s, 10 + i * 0.1, 10, 0)
    assert not trips
    feed(g, s, 11.05, 10, 10)  # 10 of the last ~100 fail: 10 %: fine
    assert not trips
    for i in range(5):
        feed(g, s, 11.1 + i * 0.1, 10, 10)
    assert len(trips) == 1
    assert trips[0].observed > 0.2
    assert "error_ratio > 20%" in trips[0].message()
    g.disarm()


def test_for_requires_the_breach_to_last():
    s = ClientSeries()
    trips = []
    g = Guard([cond(hold=1.0, window=0.2)], s, None, trips.append)
    g.arm()
    feed(g, s, 1.0, 10, 10)
    feed(g, s, 1.5, 10, 10)
    assert not trips  # only 0.5 s of breach
    feed(g, s, 1.6, 10, 0)  # recovers: the clock restarts
    feed(g, s, 1.8, 10, 0)
    feed(g, s, 2.0, 10, 10)
    feed(g, s, 2.9, 10, 10)
    assert not trips
    feed(g, s, 3.05, 10, 10)
    assert len(trips) == 1
    g.disarm()


def test_disarmed_guard_never_trips():
    s = ClientSeries()
    trips = []
    g = Guard([cond()], s, None, trips.append)
    feed(g, s, 1.0, 10, 10)
    assert not trips


def test_elapsed_condition_trips_from_its_thread():
    done = threading.Event()
    g = Guard([AbortCondition("elapsed > 0.2s", "elapsed", parse_objective("> 0.2s"))], None, None,
              lambda t: done.set(), poll=0.05)
    g.arm()
    assert done.wait(5)
    g.disarm()

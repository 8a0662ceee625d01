"""The guard trips on the first load record that shows a breach held for `for`."""
import threading
import time

from harness.engine.guard import Guard
from harness.experiment.model import AbortCondition, GuardBounds
from harness.sli.prometheus import Prometheus
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


def feed_span(guard, series, t0, t1, failed):
    """Records every 0.1 s from t0 to t1 (a stream as the generator sends it)."""
    t = t0
    while t <= t1 + 1e-9:
        feed(guard, series, round(t, 2), 10, failed)
        t += 0.1


def test_for_requires_the_breach_to_last():
    s = ClientSeries()
    trips = []
    g = Guard([cond(hold=1.0, window=0.2)], s, None, trips.append)
    g.arm()
    feed_span(g, s, 1.0, 1.5, 10)
    assert not trips  # only 0.5 s of breach
    feed_span(g, s, 1.6, 1.9, 0)  # recovers: the clock restarts
    feed_span(g, s, 2.0, 2.9, 10)
    assert not trips
    feed_span(g, s, 3.0, 3.1, 10)
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


class FakeLoad:
    """Stands in for the generator's process state only (alive, last record): what a
    dead or frozen Locust child looks like to the guard. The lab tests kill and freeze
    the real one."""

    def __init__(self, alive=True, last=None):
        self._alive = alive
        self.last_record_at = last

    @property
    def alive(self):
        return self._alive

    def exit_text(self):
        return "killed by SIGKILL"

    def silent_worker(self, now, bound):
        return None


def test_a_dead_load_generator_makes_the_guard_blind():
    done = threading.Event()
    trips = []
    load = FakeLoad(alive=True, last=time.time())
    g = Guard([cond()], ClientSeries(), None, lambda t: (trips.append(t), done.set()), load=load)
    g.arm()
    time.sleep(0.3)
    assert not trips
    load._alive = False
    assert done.wait(5)
    assert trips[0].blind == "load generator"
    assert trips[0].message().startswith("guard blind: load generator")
    assert "SIGKILL" in trips[0].message()
    g.disarm()


def test_a_stalled_load_generator_makes_the_guard_blind_after_the_bound():
    done = threading.Event()
    trips = []
    load = FakeLoad(alive=True, last=time.time())
    g = Guard([cond()], ClientSeries(), None, lambda t: (trips.append(t), done.set()), load=load,
              bounds=GuardBounds(load=0.5))
    g.arm()
    assert done.wait(5)  # no record arrives after the first
    assert "no record for" in trips[0].message() and "stalled" in trips[0].message()


def test_prometheus_that_does_not_answer_makes_the_guard_blind():
    # A real client against a port nothing listens on: every query fails.
    prom = Prometheus("http://127.0.0.1:9", timeout=0.2)
    c = AbortCondition("error_ratio > 5% (prometheus)", "error_ratio", parse_objective("> 5%"), source="prometheus")
    done = threading.Event()
    trips = []
    g = Guard([c], None, prom, lambda t: (trips.append(t), done.set()), poll=0.1,
              bounds=GuardBounds(prometheus=0.5))
    g.arm()
    assert done.wait(10)
    assert trips[0].blind == "prometheus"
    assert "did not answer" in trips[0].message()


def test_records_of_a_stalled_generator_are_never_judged_as_the_system():
    s = ClientSeries()
    t = 100.0
    for _ in range(20):  # a healthy stream, fast responses (bucket 0)
        s.add({"t": t, "n": 10, "fail": {}, "hist": {"0": 10}})
        t += 0.1
    # frozen for 5 s: the first records after it carry the freeze in their latency
    t += 5.0
    for _ in range(5):
        s.add({"t": t, "n": 10, "fail": {}, "hist": {"90": 10}})
        t += 0.1
    for _ in range(20):
        s.add({"t": t, "n": 10, "fail": {}, "hist": {"0": 10}})
        t += 0.1
    whole = s.window(99.0, t)
    assert whole.generator_records >= 5
    assert whole.quantile(0.99) < 0.01  # the 5 s stall is not the system's latency
    assert s.stalls and s.stalls[0][1] - s.stalls[0][0] > 4.9


def paused_guard(bound=3.0, prometheus=None, conditions=None):
    """A guard armed without its threads: the test is its clock (tick by hand)."""
    trips = []
    load = FakeLoad(alive=True, last=None)
    g = Guard(conditions or [cond()], ClientSeries(), prometheus, trips.append, load=load,
              bounds=GuardBounds(load=bound, prometheus=bound), on_note=lambda text: notes.append(text))
    notes = []
    g.arm(threads=False)
    wall, mono = g.started_at, g._tick_at[1]
    return g, load, trips, notes, wall, mono


def run_stream(g, load, wall, mono, seconds, record=True):
    """Tick every 0.1 s for ``seconds``; the generator's records arrive with each tick."""
    for _ in range(int(round(seconds * 10))):
        wall += 0.1
        mono += 0.1
        if record:
            load.last_record_at = wall
        g.tick(wall, mono)
    return wall, mono


def test_a_stepped_wall_clock_is_not_a_stalled_load_generator():
    # What CI saw: the machine paused for a VM snapshot, its wall clock set right on
    # resume (7 s on), while the monotonic clock moved a tick: "no record for 7.7s".
    g, load, trips, notes, wall, mono = paused_guard()
    wall, mono = run_stream(g, load, wall, mono, 2.0)
    g.tick(wall + 7.1, mono + 0.1)
    assert not trips
    assert len(g.pauses) == 1 and "wall clock was stepped by +7.0s" in notes[0]
    wall, mono = run_stream(g, load, wall + 7.1, mono + 0.1, 5.0)
    assert not trips


def test_a_paused_machine_restarts_the_bound_and_a_source_that_stays_away_still_trips():
    g, load, trips, notes, wall, mono = paused_guard(bound=3.0)
    wall, mono = run_stream(g, load, wall, mono, 2.0)
    wall, mono = wall + 7.0, mono + 7.0  # nothing ran for 7 s, both clocks moved
    g.tick(wall, mono)
    assert not trips and "did not run for 7.0s" in notes[0]
    # the generator does not come back: blind one bound after the resume, not never
    wall, mono = run_stream(g, load, wall, mono, 2.9, record=False)
    assert not trips
    wall, mono = run_stream(g, load, wall, mono, 0.3, record=False)
    assert len(trips) == 1 and trips[0].blind == "load generator"
    assert "no record for 3.1s" in trips[0].message() or "no record for 3.2s" in trips[0].message()


def test_without_a_pause_the_same_silence_trips_at_the_bound():
    # the counterpart: the guard's own ticks on time, the records stop
    g, load, trips, notes, wall, mono = paused_guard(bound=3.0)
    wall, mono = run_stream(g, load, wall, mono, 2.0)
    wall, mono = run_stream(g, load, wall, mono, 2.9, record=False)
    assert not trips
    run_stream(g, load, wall, mono, 0.3, record=False)
    assert len(trips) == 1 and not notes and not g.pauses


def test_a_clock_stepped_back_does_not_blind_the_guard_for_the_step():
    g, load, trips, notes, wall, mono = paused_guard(bound=3.0)
    wall, mono = run_stream(g, load, wall, mono, 2.0)  # last record at `wall`
    wall, mono = wall - 3600.0, mono + 0.1  # an hour back
    g.tick(wall, mono)
    assert "stepped by -3600.1s" in notes[0]
    # the generator stops right there: its last record is an hour "ahead" of now,
    # and still the guard trips one bound after the step, not an hour later
    run_stream(g, load, wall, mono, 3.3, record=False)
    assert len(trips) == 1 and trips[0].blind == "load generator"


def test_elapsed_counts_monotonic_time_not_a_clock_step():
    c = AbortCondition("elapsed > 5s", "elapsed", parse_objective("> 5s"))
    g, load, trips, notes, wall, mono = paused_guard(conditions=[c])
    wall, mono = run_stream(g, load, wall, mono, 1.0)
    g.tick(wall + 3600.0, mono + 0.1)
    assert not trips
    run_stream(g, load, wall + 3600.0, mono + 0.1, 4.5)
    assert len(trips) == 1 and "elapsed > 5s" in trips[0].message()


class _Events:
    def __init__(self, series):
        self.load = type("L", (), {"series": series})()
        self.events = []

    def event(self, kind, text, **_):
        self.events.append((kind, text))


def test_a_steady_state_window_the_generator_stalled_in_is_measured_again():
    from harness.engine.hypothesis import clean_steady_window
    from harness.sli.client import STALL_SETTLE

    s = ClientSeries()
    t = time.time() - 1.0
    s.add({"t": t, "n": 10, "fail": {}, "hist": {"0": 10}})
    s.add({"t": t + 0.8, "n": 10, "fail": {}, "hist": {"0": 10}})  # a 0.8 s gap: a stall
    assert s.stalls
    run = _Events(s)
    end = clean_steady_window(run, 0.3)
    assert end >= t + 0.8 + STALL_SETTLE + 0.3  # the window starts after the stall settled
    assert run.events and "stalled in the steady-state window" in run.events[0][1]
    # and a window with no stall in it is measured as it is (nothing said, no wait)
    quiet = _Events(ClientSeries())
    clean_steady_window(quiet, 0.3)
    assert not quiet.events


def test_a_harness_starved_tick_after_tick_does_not_push_the_bound_away():
    # every tick 1.5 s late (a CPU stress starving the harness), no records at all: one
    # fresh bound after the first late tick, then blind, not never
    g, load, trips, notes, wall, mono = paused_guard(bound=3.0)
    wall, mono = run_stream(g, load, wall, mono, 1.0)
    first = None
    for _ in range(10):
        wall, mono = wall + 1.5, mono + 1.5
        g.tick(wall, mono)
        first = first or wall
        if trips:
            break
    assert len(trips) == 1 and trips[0].blind == "load generator"
    assert wall - first <= 3.0 + 1.5
    assert "not restarted" in notes[-1]  # the second late tick


def test_a_machine_paused_again_and_again_with_records_between_never_trips():
    g, load, trips, notes, wall, mono = paused_guard(bound=3.0)
    for _ in range(5):
        wall, mono = run_stream(g, load, wall, mono, 0.5)  # the generator answers between
        wall, mono = wall + 4.0, mono + 4.0
        g.tick(wall, mono)
    assert not trips and len(g.pauses) == 5
    assert all("count again from now for load" in n for n in notes)


def test_a_record_that_comes_in_while_a_tick_runs_is_fresh_news_long_after_a_pause():
    """CI: 22 s after a 5 s pause of the whole harness, a record arrived between a tick's
    reading of the clock and its look at the load generator (its time a few ms after the
    tick's ``now``). The guard took it for a clock stepped back and counted from the
    pause: "no record for 21.9s" with records arriving every 0.1 s."""
    g, load, trips, notes, wall, mono = paused_guard(bound=3.0)
    wall, mono = run_stream(g, load, wall, mono, 1.0)
    wall, mono = wall + 5.0, mono + 5.0
    g.tick(wall, mono)
    assert "did not run for 5.0s" in notes[0]
    wall, mono = run_stream(g, load, wall, mono, 20.0)
    for _ in range(10):  # each record lands 3 ms after its tick's clock reading
        wall += 0.1
        mono += 0.1
        load.last_record_at = wall + 0.003
        g.tick(wall, mono)
    assert not trips, trips[0].message()
    # and a record stamped over a second ahead (before a clock stepped back) still counts
    # from the step: the generator that stops right there trips one bound later
    run_stream(g, load, wall, mono, 3.3, record=False)
    assert len(trips) == 1 and "no record for 3." in trips[0].message(), trips[0].message()

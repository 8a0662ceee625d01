"""The load generator: Locust in a child process, local and distributed."""
from __future__ import annotations

import time

from harness.load.generator import LoadGenerator, LoadSpec

from .conftest import ROOT


def _run(lab, **spec) -> LoadGenerator:
    gen = LoadGenerator(LoadSpec(str(ROOT / "load/api.py"), **spec), lab.cfg.load_host)
    gen.start()
    time.sleep(4)
    return gen


def test_local_load_streams_records_several_times_a_second(lab):
    gen = _run(lab, users=10, spawn_rate=10)
    try:
        now = time.time()
        w = gen.series.window(now - 2, now)
        assert w.requests > 20 and w.availability == 1.0
        # ~10 records a second: abort conditions are evaluated that often
        assert len([t for t in gen.series._t if t > now - 2]) >= 10
        gen.set_users(2)
        time.sleep(3)
        now = time.time()
        assert gen.series.window(now - 1, now).requests < w.requests / 2
    finally:
        gen.stop()
    assert not gen.alive


def test_distributed_mode_merges_the_workers_view(lab):
    gen = _run(lab, users=10, spawn_rate=10, workers=2)
    try:
        now = time.time()
        w = gen.series.window(now - 2, now)
        # the requests are made by the two worker processes; the master streams them
        assert w.requests > 20 and w.availability == 1.0 and w.quantile(0.5) is not None
    finally:
        gen.stop()
    assert not gen.alive

"""Shared helpers for benchmarks: a lab of their own, percentiles, ratio tables."""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary(values: list[float]) -> str:
    return (f"n={len(values):2d}  p50={percentile(values, .5) * 1000:7.1f} ms  "
            f"p95={percentile(values, .95) * 1000:7.1f} ms  mean={statistics.fmean(values) * 1000:7.1f} ms")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--lab-dir", default=None, help="use a running lab instead of starting one")
    return p


@contextlib.contextmanager
def bench_lab(lab_dir: str | None, with_db: bool = False):
    """A lab for the benchmark: the given one, or a fresh minimal one (torn down after)."""
    from harness.lab.config import LabConfig
    from harness.lab.lab import Lab

    if lab_dir:
        yield Lab.open(lab_dir)
        return
    os.environ.setdefault("HARNESS_STATE_DIR", "/var/lib/resilience-harness/bench")
    cfg = LabConfig(prefix="rhb", subnet="10.80.0", port_base=23000, with_db=with_db)
    lab = Lab(cfg)
    lab.down()
    lab.up()
    try:
        yield lab
    finally:
        lab.down()

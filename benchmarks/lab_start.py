#!/usr/bin/env python3
"""Cold and warm start of the full lab, to all-healthy (issue 4 target: cold <= 30 s on 2 cores).

  cold  nothing on disk: namespaces, etcd cluster, initdb + Patroni bootstrap, two
        replicas cloned, pgBackRest stanza + first full backup, services, monitoring
  warm  `lab down` kept the run directory (data, backups); `lab up` again
  again `lab up` on the running lab (idempotent: checks and leaves it alone)

Each is timed from the call to `lab up` until `lab status` is all healthy, with the
time per component (from the progress messages). Runs on its own lab (prefix rhfb,
10.81.0.0/24, ports 24000+, /tmp/rhfb) and tears it down at the end.

    .venv/bin/python benchmarks/lab_start.py [--rounds 1] [--keep]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.lab.config import LabConfig  # noqa: E402
from harness.lab.lab import Lab  # noqa: E402

RUN_DIR = "/tmp/rhfb/lab"


def cfg() -> LabConfig:
    return LabConfig(prefix="rhfb", subnet="10.81.0", port_base=24000, run_dir=RUN_DIR)


def timed_up(lab: Lab) -> tuple[float, float, dict[str, float]]:
    steps: dict[str, float] = {}
    last = [time.monotonic(), None]

    def progress(msg: str) -> None:
        now = time.monotonic()
        if last[1]:
            steps[last[1]] = now - last[0]
        last[0], last[1] = now, msg.replace("starting ", "")

    t0 = time.monotonic()
    lab.up(progress)
    t_up = time.monotonic() - t0
    if last[1]:
        steps[last[1]] = time.monotonic() - last[0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if lab.healthy():
            break
        time.sleep(0.2)
    else:
        bad = [h for h in lab.status() if not h.ok]
        raise SystemExit(f"lab not healthy 60 s after up: {bad}")
    return t_up, time.monotonic() - t0, steps


def show(name: str, t_up: float, t_healthy: float, steps: dict[str, float]) -> None:
    top = sorted(steps.items(), key=lambda kv: -kv[1])[:5]
    print(f"{name:5s}  up {t_up:6.2f} s   all healthy {t_healthy:6.2f} s   "
          f"(slowest: {', '.join(f'{k} {v:.1f}s' for k, v in top)})", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--keep", action="store_true", help="leave the lab running at the end")
    args = p.parse_args()
    lab = Lab(cfg())
    colds, warms = [], []
    try:
        for _ in range(args.rounds):
            lab.down()
            shutil.rmtree(Path(RUN_DIR).parent, ignore_errors=True)
            r = timed_up(lab)
            show("cold", *r)
            colds.append(r[1])
            r = timed_up(lab)
            show("again", *r)
            left = lab.down()
            assert not left, left
            r = timed_up(lab)
            show("warm", *r)
            warms.append(r[1])
    finally:
        if not args.keep:
            left = lab.down()
            shutil.rmtree(Path(RUN_DIR).parent, ignore_errors=True)
            if left:
                print(f"lab down left: {left}")
    cold, warm = min(colds), min(warms)
    print(f"\ncold {cold:.2f} s (target <= 30 s: {'met' if cold <= 30 else 'NOT met'}), warm {warm:.2f} s, "
          f"cold/warm ratio {cold / warm:.2f}")


if __name__ == "__main__":
    main()

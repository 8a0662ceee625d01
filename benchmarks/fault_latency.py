#!/usr/bin/env python3
"""Fault injection and revert latency on the lab, seen from outside (issue 7).

  injection latency  the call to inject() -> the fault observable from outside
  revert latency     the call to revert() -> the fault no longer observable

For each fault kind, >= 10 trials, p50/p95. Target (issue 7): <= 100 ms for latency
toxics and zone cuts. Kinds measured here:

  network-latency  a 100 ms Toxiproxy latency toxic on the ``dependency`` link.
                   Observed by 16 threads doing back-to-back HTTP round trips through
                   the link: injected = the first round trip that *started* after the
                   call and took >= 80 ms; reverted = the first round trip started after
                   the revert call that took < 50 ms.
  db-failover      mode crash on the primary. Injected = the member's PostgreSQL port
                   refuses connections (from the host). Also printed: kill -> a new
                   primary elected (Patroni) and kill -> the first successful write
                   through HAProxy (the write outage). Revert = start the member again ->
                   it is back in the cluster, streaming as a replica.
  db-switchover    mode switchover. Injected = a new primary elected (Patroni REST).
  zone-loss        mode refuse on the zone of api-0. Injected = a TCP connect from the
                   host to that replica is refused; reverted = it connects again.

Runs on its own full lab (prefix rhfb, 10.81.0.0/24, ports 24000+, /tmp/rhfb) unless
--lab-dir names a running one. Other kinds (pod-kill, zone-loss) can be added to
TRIALS with the same shape: fn(target, trials) -> dict of name -> list of seconds.

    .venv/bin/python benchmarks/fault_latency.py [--trials 10] [--kinds network-latency,db-failover]
"""
from __future__ import annotations

import argparse
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import percentile  # noqa: E402

from harness.lab import db  # noqa: E402
from harness.lab.config import LabConfig  # noqa: E402
from harness.lab.lab import Lab  # noqa: E402
from harness.targets.lab import LabTarget  # noqa: E402

RUN_DIR = "/tmp/rhfb/lab"


class RoundTrips:
    """Threads doing HTTP round trips through a Toxiproxy link; records (start, duration)."""

    def __init__(self, host: str, port: int, threads: int = 16):
        self.addr = (host, port)
        self.samples: list[tuple[float, float]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    def _loop(self) -> None:
        while not self.stop.is_set():
            t0 = time.time()
            try:
                with socket.create_connection(self.addr, timeout=5) as s:
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                    s.recv(1)
            except OSError:
                time.sleep(0.01)
                continue
            with self.lock:
                self.samples.append((t0, time.time() - t0))

    def __enter__(self):
        for t in self.threads:
            t.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(5)

    def first(self, after: float, pred, timeout: float = 5.0) -> float | None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                hits = [t for t, d in self.samples if t >= after and pred(d)]
            if hits:
                return min(hits)
            time.sleep(0.005)
        return None


def trial_network_latency(target: LabTarget, trials: int) -> dict[str, list[float]]:
    cfg = target.cfg
    out: dict[str, list[float]] = {"inject": [], "revert": [], "inject call": [], "revert call": []}
    latency = 0.100
    with RoundTrips(cfg.host_ip, cfg.port("toxi-dependency")) as rt:
        for _ in range(trials):
            f = target.fault("network-latency", {"link": "dependency", "latency": "100ms"})
            state = f.prepare()
            t_call = time.time()
            f.inject(state)
            out["inject call"].append(time.time() - t_call)
            seen = rt.first(t_call, lambda d: d >= latency * 0.8)
            time.sleep(0.3)
            t_rev = time.time()
            f.revert(state)
            out["revert call"].append(time.time() - t_rev)
            gone = rt.first(t_rev, lambda d: d < latency * 0.5)
            if seen is None or gone is None:
                raise SystemExit("the latency toxic was not observed (or not removed) through the link")
            out["inject"].append(max(0.0, seen - t_call))
            out["revert"].append(max(0.0, gone - t_rev))
            assert f.verify_reverted(state) == []
            time.sleep(0.3)
    return out


def _refused(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.2):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def _write_ok(cfg) -> bool:
    import psycopg

    try:
        with psycopg.connect(db.dsn(cfg, via="haproxy"), autocommit=True, connect_timeout=1) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS bench_probe (t double precision)")
            conn.execute("INSERT INTO bench_probe VALUES (%s)", (time.time(),))
        return True
    except Exception:  # noqa: BLE001
        return False


def _until(pred, timeout: float, step: float = 0.002) -> float | None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return time.time()
        time.sleep(step)
    return None


def trial_db_failover(target: LabTarget, trials: int) -> dict[str, list[float]]:
    cfg = target.cfg
    out: dict[str, list[float]] = {"inject": [], "revert": [], "new primary": [], "write outage": []}
    for i in range(trials):
        old = db.primary(cfg)
        zone = db.zone_of(old)
        f = target.fault("db-failover", {"mode": "crash"})
        state = f.prepare()
        t_call = time.time()
        f.inject(state)
        t_gone = _until(lambda: _refused(cfg.zone_ip(zone), cfg.port("postgres")), 10)
        t_new = _until(lambda: (p := db.primary(cfg, timeout=0.3)) is not None and p != old, 90, 0.05)
        t_write = _until(lambda: _write_ok(cfg), 90, 0.05)
        t_rev = time.time()
        f.revert(state)  # starts the member and waits until it is back in the cluster
        t_back = time.time()
        problems = f.verify_reverted(state)
        if None in (t_gone, t_new, t_write) or problems:
            raise SystemExit(f"trial {i}: failover not observed or not reverted: {problems}")
        out["inject"].append(t_gone - t_call)
        out["new primary"].append(t_new - t_call)
        out["write outage"].append(t_write - t_call)
        out["revert"].append(t_back - t_rev)
        print(f"  crash {i + 1}/{trials}: {old} -> {db.primary(cfg)}, new primary after {t_new - t_call:.1f}s, "
              f"writes after {t_write - t_call:.1f}s, rejoined in {t_back - t_rev:.1f}s", flush=True)
        _until(lambda: len(db.replicas_streaming(cfg)) == len(cfg.zones) - 1, 60, 0.2)
    return out


def trial_db_switchover(target: LabTarget, trials: int) -> dict[str, list[float]]:
    cfg = target.cfg
    out: dict[str, list[float]] = {"inject (new primary)": [], "write outage": [], "revert": []}
    for i in range(trials):
        old = db.primary(cfg)
        f = target.fault("db-failover", {"mode": "switchover"})
        state = f.prepare()
        t_call = time.time()
        f.inject(state)
        t_new = _until(lambda: (p := db.primary(cfg, timeout=0.3)) is not None and p != old, 60, 0.02)
        t_write = _until(lambda: _write_ok(cfg), 60, 0.02)
        t_rev = time.time()
        f.revert(state)
        out["revert"].append(time.time() - t_rev)
        if t_new is None or t_write is None:
            raise SystemExit(f"switchover {i}: no new primary")
        out["inject (new primary)"].append(t_new - t_call)
        out["write outage"].append(t_write - t_call)
        _until(lambda: len(db.replicas_streaming(cfg)) == len(cfg.zones) - 1, 60, 0.2)
    return out


TRIALS = {
    "network-latency": trial_network_latency,
    "db-failover": trial_db_failover,
    "db-switchover": trial_db_switchover,
}


def _connect_ok(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.05):
            return True
    except OSError:
        return False


def trial_zone_loss(target: LabTarget, trials: int) -> dict[str, list[float]]:
    """zone-loss (refuse) of the zone of api-0: injected = a TCP connect from the host to
    the replica there is refused; reverted = it connects again. Blackhole gives the same
    rule-change latency but can only be observed through a timeout, so refuse is timed."""
    cfg = target.cfg
    rep = target.replicas({"app": "api"})[0]
    ip, port = rep["addr"].split(":")
    inj, rev = [], []
    for _ in range(trials):
        fault = target.fault("zone-loss", {"zone": rep["zone"], "mode": "refuse"})
        state = fault.prepare()
        t0 = time.time()
        fault.inject(state)
        t1 = _until(lambda: not _connect_ok(ip, int(port)), 5)
        t2 = time.time()
        fault.revert(state)
        t3 = _until(lambda: _connect_ok(ip, int(port)), 5)
        if t1 is not None:
            inj.append(t1 - t0)
        if t3 is not None:
            rev.append(t3 - t2)
        time.sleep(0.5)
    return {"inject": inj, "revert": rev}


TRIALS["zone-loss"] = trial_zone_loss


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--kinds", default=",".join(TRIALS))
    p.add_argument("--lab-dir", default=None, help="use a running lab instead of starting one")
    args = p.parse_args()
    if args.lab_dir:
        lab, own = Lab.open(args.lab_dir), False
    else:
        lab, own = Lab(LabConfig(prefix="rhfb", subnet="10.81.0", port_base=24000, run_dir=RUN_DIR)), True
        lab.down()
        shutil.rmtree(Path(RUN_DIR).parent, ignore_errors=True)
        print(f"lab up in {lab.up():.1f}s", flush=True)
    target = LabTarget(lab.cfg)
    results = {}
    try:
        for kind in args.kinds.split(","):
            print(f"{kind}: {args.trials} trials", flush=True)
            results[kind] = TRIALS[kind](target, args.trials)
    finally:
        if own:
            left = lab.down()
            shutil.rmtree(Path(RUN_DIR).parent, ignore_errors=True)
            if left:
                print(f"lab down left: {left}")
    print()
    for kind, series in results.items():
        for name, values in series.items():
            print(f"{kind:16s} {name:22s} n={len(values):2d}  p50 {percentile(values, .5) * 1000:9.1f} ms"
                  f"  p95 {percentile(values, .95) * 1000:9.1f} ms")


if __name__ == "__main__":
    main()

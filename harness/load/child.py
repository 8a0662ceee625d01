"""The load generator's own process: Locust as a library, streaming its view.

Locust monkey-patches the standard library with gevent when it is imported, and
importing it after ssl/requests were imported crashed here (RecursionError). So load
always runs in this child process, which imports locust before anything else, and
talks to the harness over pipes:

* stdout: one JSON line per ``--interval`` (default 0.1 s) with what the users saw
  in that interval: requests, failures by kind, a latency histogram (log buckets,
  5 % wide), active users. The harness turns these into client-side SLIs and
  evaluates abort conditions on every line, so a breach is seen within ~0.1 s.
* stdin: JSON commands, e.g. ``{"users": 50, "spawn_rate": 10}`` to change load.

Distributed mode: ``--workers N`` makes this process a Locust master with N local
worker processes (``--worker``); remote workers join with
``harness load-worker --master HOST:PORT``. Workers forward the same interval
records to the master with Locust's custom messages, so the harness sees one stream.
"""
from __future__ import annotations

# isort: off
from gevent import monkey  # noqa: E402  (locust does this too; be explicit and first)

monkey.patch_all()
from locust.env import Environment  # noqa: E402
from locust.util.load_locustfile import load_locustfile  # noqa: E402
# isort: on

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402

from harness.load.records import bucket, classify  # noqa: E402


class Interval:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.fail: dict[str, int] = {}
        self.hist: dict[int, int] = {}
        self.errors: dict[str, int] = {}

    def add(self, response_time, exception, response) -> None:
        self.n += 1
        b = bucket(float(response_time or 0.0))
        self.hist[b] = self.hist.get(b, 0) + 1
        if exception is not None:
            kind = classify(exception, response)
            self.fail[kind] = self.fail.get(kind, 0) + 1
            key = f"{kind}: {str(exception)[:80]}"
            if len(self.errors) < 20 or key in self.errors:
                self.errors[key] = self.errors.get(key, 0) + 1

    def merge(self, rec: dict) -> None:
        self.n += rec["n"]
        for k, v in rec["fail"].items():
            self.fail[k] = self.fail.get(k, 0) + v
        for k, v in rec["hist"].items():
            self.hist[int(k)] = self.hist.get(int(k), 0) + v
        for k, v in rec.get("errors", {}).items():
            if len(self.errors) < 20 or k in self.errors:
                self.errors[k] = self.errors.get(k, 0) + v

    def record(self) -> dict:
        return {"n": self.n, "fail": self.fail, "hist": self.hist, "errors": self.errors}


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def main() -> None:
    p = argparse.ArgumentParser(description="harness load generator (Locust)")
    p.add_argument("--locustfile", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--users", type=int, default=10)
    p.add_argument("--spawn-rate", type=float, default=10)
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--workers", type=int, default=0, help="local worker processes (distributed mode)")
    p.add_argument("--expect-workers", type=int, default=0, help="wait for this many workers in all")
    p.add_argument("--master-bind", default="127.0.0.1:0")
    p.add_argument("--worker", action="store_true")
    p.add_argument("--master", default="", help="HOST:PORT of the master (worker mode)")
    args = p.parse_args()

    user_classes, shapes = load_locustfile(os.path.abspath(args.locustfile))
    if not user_classes:
        emit({"error": f"{args.locustfile} defines no Locust User class"})
        sys.exit(2)
    env = Environment(user_classes=list(user_classes.values()), host=args.host)
    interval = Interval()

    def on_request(request_type, name, response_time, response_length, response=None,
                   context=None, exception=None, **_kw):
        interval.add(response_time, exception, response)

    env.events.request.add_listener(on_request)

    if args.worker:
        host, port = args.master.rsplit(":", 1)
        runner = env.create_worker_runner(host, int(port))

        def forward():
            while True:
                gevent.sleep(args.interval)
                rec = interval.record()
                interval.reset()
                # sent even when empty: it is also the worker's heartbeat, at the interval
                # (Locust's own heartbeat is 1 s and a worker is "missing" only after 3 of
                # them); during a fault whose requests all hang, an empty record says
                # "alive, nothing completed", and silence says "lost"
                runner.send_message("harness_interval", rec)

        gevent.spawn(forward)
        runner.greenlet.join()
        return

    workers: list[subprocess.Popen] = []
    #: distributed mode: when each worker's last interval record arrived (master's clock)
    worker_seen: dict[str, float] = {}
    if args.workers or args.expect_workers:
        bind_host, bind_port = args.master_bind.rsplit(":", 1)
        if int(bind_port) == 0:
            import socket

            with socket.socket() as s:
                s.bind((bind_host, 0))
                bind_port = str(s.getsockname()[1])
        runner = env.create_master_runner(bind_host, int(bind_port))
        def on_interval(msg, **_kw):
            worker_seen[msg.node_id] = time.monotonic()
            interval.merge(msg.data)

        runner.register_message("harness_interval", on_interval)
        for _ in range(args.workers):
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "harness.load.child", "--worker",
                 "--master", f"{bind_host}:{bind_port}", "--locustfile", args.locustfile,
                 "--host", args.host],
                stdin=subprocess.DEVNULL,
            ))
        expected = max(args.expect_workers, args.workers)
        deadline = time.time() + float(os.environ.get("HARNESS_LOAD_WORKERS_WAIT", "60"))
        while len(runner.clients.ready) < expected and time.time() < deadline:
            gevent.sleep(0.1)
        emit({"event": "workers", "ready": len(runner.clients.ready), "master": f"{bind_host}:{bind_port}",
              "ids": sorted(c.id for c in runner.clients.ready)})
    else:
        runner = env.create_local_runner()

    stopping = False

    def stop(*_a):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def commands():
        from gevent.os import make_nonblocking, nb_read

        make_nonblocking(sys.stdin.fileno())
        buf = b""
        while True:
            chunk = nb_read(sys.stdin.fileno(), 4096)
            if not chunk:
                stop()
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    cmd = json.loads(line)
                except ValueError:
                    continue
                if "users" in cmd:
                    runner.start(int(cmd["users"]), float(cmd.get("spawn_rate", args.spawn_rate)))
                if cmd.get("stop"):
                    stop()

    gevent.spawn(commands)
    runner.start(args.users, args.spawn_rate)
    emit({"event": "started", "users": args.users, "t": time.time()})
    # Ticks are scheduled by the monotonic clock and stamped with the wall clock: a wall
    # clock stepped back (by hand, or set right after a paused VM resumed) would
    # otherwise hold the next tick for the whole step, a stall the guard rightly trips on.
    next_tick = time.monotonic() + args.interval
    while not stopping:
        gevent.sleep(max(0.0, next_tick - time.monotonic()))
        mono = time.monotonic()
        rec = interval.record()
        interval.reset()
        rec["t"] = time.time()
        rec["users"] = runner.user_count
        # How late this tick is: the generator's own loop was blocked (CPU starvation,
        # a frozen process). The harness leaves such records out of the system's SLIs.
        lag = mono - next_tick
        if lag > 0.05:
            rec["lag"] = round(lag, 3)
        if worker_seen:
            # every worker that ever reported, with how long ago: the harness's guard
            # trips when one falls silent while a fault is active (a lost load machine)
            rec["workers"] = {w: round(mono - t, 3) for w, t in worker_seen.items()}
        if runner.current_cpu_usage > 90.0:  # Locust's own CPU warning threshold
            rec["starved"] = True
            rec["cpu"] = runner.current_cpu_usage
        emit(rec)
        next_tick += args.interval
        if next_tick < mono:
            next_tick = mono + args.interval
    runner.quit()
    for w in workers:
        w.terminate()
    emit({"event": "stopped", "t": time.time()})


if __name__ == "__main__":
    main()

"""The lab's sample service: a small HTTP API with RED metrics, backed by PostgreSQL.

Routes (what the default locustfile exercises):
  GET  /api/ping            cheap, no dependencies
  GET  /api/orders          the newest orders from the database (an index read: it costs
                            the same after a night of writes)
  GET  /api/orders/count    how many orders the database holds (a full count: for smoke
                            tests such as a restore drill's, not for load)
  POST /api/orders          write to the database; every acknowledged write is logged
  GET  /api/quote           calls the external dependency (timeout configurable)
  POST /api/payments        sends a payment to the dependency; when it cannot, queues it
                            (202) and a drainer sends it once the dependency is back
                            (harness/lab/payments.py)
  GET  /api/work?ms=N       burns N ms of CPU (drives autoscaling)
  POST /api/burn?millicores=N  burn N millicores in the background until told 0
                            (the lab's cpu-stress fault: a CPU spike inside the "pod")
  GET  /healthz             liveness/readiness for HAProxy
  GET  /metrics             Prometheus: http_requests_total, http_request_duration_seconds

Run as ``python -m harness.lab.service --listen IP:PORT ...`` (the orchestrator does).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from harness.lab.httpd import QuietHandler
from harness.lab.payments import PaymentQueue

REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10),
)
DB_ERRORS = Counter("db_errors_total", "database errors", ["kind"])
#: seed 002's "DB latency p95 > 100 ms" alert reads this (plans/lab.yaml DatabaseLatencyHigh):
#: each query's round trip as the service sees it (the pool checkout left out: waiting for a
#: connection is the pool's problem, seen in the HTTP latency)
DB_SECONDS = Histogram("db_query_duration_seconds", "database query time seen by the service",
                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5))
DEP_ERRORS = Counter("dependency_errors_total", "dependency call errors", ["kind"])
FALLBACKS = Counter("dependency_fallbacks_total", "answers served from the last good dependency answer")
UP_SINCE = Gauge("service_start_time_seconds", "when this replica started")


class App:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.pool = None
        self.ack_log = None
        self.memory_orders = 0
        self.memory_recent: list[dict] = []
        self.burn_millicores = 0
        self.last_quote: dict | None = None
        self._burner = None
        self.lock = threading.Lock()
        self.payments = PaymentQueue(args)
        if args.ack_log:
            os.makedirs(os.path.dirname(args.ack_log), exist_ok=True)
            self.ack_log = open(args.ack_log, "a", buffering=1)
        if args.db:
            from psycopg_pool import ConnectionPool
            from psycopg_pool import base as pool_base

            # psycopg_pool retries lost connections with exponential backoff (1, 2, 4, 8 s
            # ...): after a 20 s failover the service wrote again ~9 s after the database
            # could (measured). A constant 1 s retry is what this service wants.
            pool_base.AttemptWithBackoff.DELAY_BACKOFF = args.db_reconnect_backoff

            self.pool = ConnectionPool(
                args.db,
                min_size=1,
                max_size=args.db_pool,
                open=False,
                timeout=args.db_timeout,
                kwargs={"connect_timeout": max(1, int(args.db_timeout)), "autocommit": True},
            )
            self.pool.open(wait=False)
            threading.Thread(target=self._ensure_schema, daemon=True).start()

    def _ensure_schema(self) -> None:
        while True:
            try:
                with self.pool.connection() as conn:
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS orders ("
                        " id uuid PRIMARY KEY, replica text, created_at timestamptz DEFAULT now())"
                    )
                    conn.execute("CREATE INDEX IF NOT EXISTS orders_created_at ON orders (created_at)")
                return
            except Exception:  # noqa: BLE001 - the DB may still be starting
                time.sleep(0.5)

    # -- routes ------------------------------------------------------------
    def orders_read(self) -> tuple[int, dict]:
        """The newest orders. It used to be ``SELECT count(*)``: a full scan that grew
        with every write, so after a long session of load (the test suite, a soak) the
        lab's own latency rose until steady states failed for no fault's reason."""
        if not self.pool:
            return 200, {"orders": self.memory_recent[-10:][::-1]}
        try:
            with self.pool.connection() as conn, DB_SECONDS.time():
                rows = conn.execute("SELECT id, replica, created_at FROM orders ORDER BY created_at DESC LIMIT 10"
                                    ).fetchall()
            return 200, {"orders": [{"id": str(i), "replica": r, "created_at": c.isoformat()} for i, r, c in rows]}
        except Exception as exc:  # noqa: BLE001
            DB_ERRORS.labels(type(exc).__name__).inc()
            return 503, {"error": f"database: {type(exc).__name__}"}

    def orders_count(self) -> tuple[int, dict]:
        if not self.pool:
            return 200, {"count": self.memory_orders}
        try:
            with self.pool.connection() as conn:
                row = conn.execute("SELECT count(*) FROM orders").fetchone()
            return 200, {"count": row[0]}
        except Exception as exc:  # noqa: BLE001
            DB_ERRORS.labels(type(exc).__name__).inc()
            return 503, {"error": f"database: {type(exc).__name__}"}

    def orders_write(self) -> tuple[int, dict]:
        order_id = str(uuid.uuid4())
        if self.pool:
            try:
                with self.pool.connection() as conn, DB_SECONDS.time():
                    conn.execute(
                        "INSERT INTO orders (id, replica) VALUES (%s, %s)",
                        (order_id, self.args.name),
                    )
            except Exception as exc:  # noqa: BLE001
                DB_ERRORS.labels(type(exc).__name__).inc()
                return 503, {"error": f"database: {type(exc).__name__}"}
        else:
            with self.lock:
                self.memory_orders += 1
                self.memory_recent = (self.memory_recent + [{"id": order_id, "replica": self.args.name}])[-10:]
        if self.ack_log:
            # The write is acknowledged only after this line reached the kernel: the
            # log is the ground truth for "acknowledged writes lost" after a failover.
            self.ack_log.write(f"{order_id} {time.time():.6f}\n")
        return 201, {"id": order_id}

    def quote(self) -> tuple[int, dict]:
        """Call the dependency; on timeout or error fall back to the last good answer
        (seed 000's runbook: serve from cache while BOX is down) when allowed."""
        if not self.args.dependency:
            return 200, {"quote": 1.0, "source": "static"}
        timeout = self.args.dependency_timeout if self.args.dependency_timeout > 0 else None
        try:
            with urllib.request.urlopen(self.args.dependency + "/quote", timeout=timeout) as r:
                body = json.loads(r.read())
            self.last_quote = body
            return 200, body
        except (urllib.error.URLError, OSError, ValueError) as exc:
            kind = "timeout" if isinstance(exc, (socket.timeout, TimeoutError)) or "timed out" in str(exc) else "error"
            DEP_ERRORS.labels(kind).inc()
            if self.args.dependency_fallback and self.last_quote is not None:
                FALLBACKS.inc()
                return 200, {**self.last_quote, "source": "fallback"}
            return (504 if kind == "timeout" else 502), {"error": f"dependency {kind}"}

    def burn(self, millicores: int) -> tuple[int, dict]:
        """Background CPU burn at ``millicores`` of CPU time per second."""
        self.burn_millicores = max(0, min(1000, millicores))
        if self.burn_millicores and not getattr(self, "_burner", None):
            def loop() -> None:
                # Burn CPU *time* (not wall time) each 100 ms period, so the spike is
                # what was asked for even when the machine is busy.
                period = 0.100
                while self.burn_millicores:
                    start_wall, start_cpu = time.perf_counter(), time.thread_time()
                    budget = period * self.burn_millicores / 1000.0
                    while time.thread_time() - start_cpu < budget and time.perf_counter() - start_wall < period:
                        pass
                    time.sleep(max(0.0, period - (time.perf_counter() - start_wall)))
                self._burner = None

            self._burner = threading.Thread(target=loop, daemon=True)
            self._burner.start()
        return 200, {"millicores": self.burn_millicores}

    @staticmethod
    def work(ms: float) -> tuple[int, dict]:
        end = time.process_time() + ms / 1000.0
        x = 0
        while time.process_time() < end:
            x += 1
        return 200, {"spun": x}


def make_handler(app: App):
    class Handler(QuietHandler):

        def _route(self, method: str) -> None:
            path, _, query = self.path.partition("?")
            if path == "/metrics":
                self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
                return
            if path == "/healthz":
                self._send(200, b'{"ok":true}')
                return
            start = time.perf_counter()
            route = path
            if method == "GET" and path == "/api/ping":
                status, body = 200, {"pong": app.args.name}
            elif path == "/api/orders" and method == "GET":
                status, body = app.orders_read()
            elif path == "/api/orders/count" and method == "GET":
                status, body = app.orders_count()
                route = "other"  # a smoke-test read, kept out of the SLIs
            elif path == "/api/orders" and method == "POST":
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                status, body = app.orders_write()
            elif path == "/api/quote" and method == "GET":
                status, body = app.quote()
            elif path == "/api/payments/queue" and method == "POST":  # test-only knob (harness/lab/payments.py)
                status, body = app.payments.set_queueing(query)
                route = "other"  # control traffic, kept out of the SLIs
            elif path == "/api/payments" and method == "POST":
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                status, body = app.payments.pay()
            elif path == "/api/burn" and method == "POST":
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                mc = 0
                for part in query.split("&"):
                    if part.startswith("millicores="):
                        mc = int(float(part.split("=", 1)[1] or 0))
                status, body = app.burn(mc)
                route = "other"  # control traffic, not user traffic: kept out of the SLIs
            elif path == "/api/work" and method == "GET":
                ms = 10.0
                for part in query.split("&"):
                    if part.startswith("ms="):
                        try:
                            ms = min(1000.0, float(part[3:]))
                        except ValueError:
                            pass
                status, body = app.work(ms)
            else:
                route = "other"
                status, body = 404, {"error": "not found"}
            self._send(status, json.dumps(body).encode())
            REQUESTS.labels(method, route, str(status)).inc()
            DURATION.labels(route).observe(time.perf_counter() - start)

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--listen", required=True, help="IP:PORT")
    p.add_argument("--name", default="api")
    p.add_argument("--db", default="", help="PostgreSQL conninfo (empty: in-memory)")
    # Sized for the default load (~100 req/s over 3 replicas) with 300 ms of DB latency:
    # 4 connections exhausted the pool there (p95 840 ms), which is what experiments find.
    p.add_argument("--db-pool", type=int, default=16)
    p.add_argument("--db-timeout", type=float, default=2.0)
    p.add_argument("--db-reconnect-backoff", type=float, default=1.0,
                   help="multiplier between reconnection attempts (psycopg_pool's default is 2)")
    p.add_argument("--dependency", default="", help="base URL of the external dependency")
    p.add_argument("--dependency-timeout", type=float, default=1.0, help="seconds; 0 = no timeout")
    p.add_argument("--dependency-fallback", type=int, default=1,
                   help="1: answer from the last good dependency answer when it fails; 0: fail")
    p.add_argument("--ack-log", default="", help="append-only log of acknowledged writes")
    PaymentQueue.add_arguments(p)
    args = p.parse_args(argv)
    host, port = args.listen.rsplit(":", 1)
    UP_SINCE.set(time.time())
    server = Server((host, int(port)), make_handler(App(args)))
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()

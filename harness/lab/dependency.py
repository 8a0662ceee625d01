"""A stub "external dependency" (think of the payment or document-storage API in the seeds).

  GET /quote     {"quote": <float>, "source": "dependency"}
  POST /pay      {"id": ...}: a payment, appended to the ledger (``--ledger``) before 200
  GET /healthz   200 while it runs
  GET /metrics   dependency_requests_total, dependency_request_duration_seconds

The service calls it through Toxiproxy (link ``dependency``); the fault
``dependency-down`` stops the process and its revert starts it again. Prometheus
scrapes it as job ``dependency``; the plan's ``DependencyDown`` alert fires on
``up{job="dependency"} == 0``.

Run as ``python -m harness.lab.dependency --listen 127.0.0.1:PORT``.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from http.server import ThreadingHTTPServer

from harness.lab import procs
from harness.lab.component import Component, Health
from harness.lab.httpd import QuietHandler


def ledger_path(cfg):
    """Every payment the dependency received (``id epoch`` per line), across restarts."""
    return cfg.path("data", "payments-ledger.log")


class Dependency(Component):
    name = "dependency"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.cfg.port('dependency')}"

    def start(self) -> None:
        procs.start(self.cfg, self.name, [
            sys.executable, "-m", "harness.lab.dependency",
            "--listen", f"127.0.0.1:{self.cfg.port('dependency')}",
            "--ledger", str(ledger_path(self.cfg)),
        ])
        procs.wait_for(self.ok, 15, "dependency", self.cfg, self.name)

    def ok(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                return r.status == 200
        except Exception:  # noqa: BLE001
            return False

    def stop(self) -> None:
        procs.stop(self.cfg, self.name)

    def health(self) -> list[Health]:
        ok = self.ok()
        return [Health("dependency", self.url, ok, "answering" if ok else "down")]

    def prometheus_jobs(self) -> list[dict]:
        return [{"job_name": "dependency", "static_configs": [{"targets": [f"127.0.0.1:{self.cfg.port('dependency')}"]}]}]

    def service_args(self) -> dict[str, str]:
        return {"dependency": f"http://{self.cfg.host_ip}:{self.cfg.port('toxi-dependency')}"}


def main(argv: list[str] | None = None) -> None:
    from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--listen", required=True)
    p.add_argument("--ledger", default="", help="append-only log of the payments received")
    args = p.parse_args(argv)
    ledger = open(args.ledger, "a", buffering=1) if args.ledger else None
    requests_total = Counter("dependency_requests_total", "requests", ["route", "status"])
    duration = Histogram("dependency_request_duration_seconds", "request duration", ["route"])

    class Handler(QuietHandler):

        def do_GET(self) -> None:
            t0 = time.perf_counter()
            path = self.path.split("?")[0]
            if path == "/metrics":
                self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
                return
            if path == "/healthz":
                self._send(200, b'{"ok":true}')
                return
            if path == "/quote":
                body = json.dumps({"quote": round(100 + random.random(), 4), "source": "dependency"}).encode()
                self._send(200, body)
                requests_total.labels("/quote", "200").inc()
                duration.labels("/quote").observe(time.perf_counter() - t0)
                return
            self._send(404, b'{"error":"not found"}')
            requests_total.labels("other", "404").inc()

        def do_POST(self) -> None:
            t0 = time.perf_counter()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path.split("?")[0] != "/pay":
                self._send(404, b'{"error":"not found"}')
                return
            try:
                payment_id = str(json.loads(body)["id"])
            except (ValueError, KeyError, TypeError):
                self._send(400, b'{"error":"a payment is {\"id\": ...}"}')
                return
            if ledger:
                ledger.write(f"{payment_id} {time.time():.6f}\n")  # on record before the 200
            self._send(200, b'{"ok":true}')
            requests_total.labels("/pay", "200").inc()
            duration.labels("/pay").observe(time.perf_counter() - t0)

    host, port = args.listen.rsplit(":", 1)
    ThreadingHTTPServer.request_queue_size = 128  # the default backlog of 5 drops bursts
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()

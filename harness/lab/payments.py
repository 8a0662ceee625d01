"""Payments in the lab's sample service: sent to the external dependency, queued when it
cannot take them (seed 002 §15.5 GameDay "payment API down -> fallback and queueing").

``POST /api/payments`` sends ``{"id": ...}`` to the dependency's ``/pay``. On success
the user gets 201; when the dependency fails or times out the payment goes into a
queue and the user gets 202 (accepted); a drainer thread sends the queue in order once
the dependency answers again. Every accepted payment is logged (``<acks>/payments/
<replica>.log``: ``id epoch sent|queued``) *before* the answer, and the dependency logs
every payment it received (its ledger): the check ``payments-delivered`` counts what
was accepted and never arrived.

``--payment-queue 0`` (or ``POST /api/payments/queue?enabled=0`` on a running replica)
is a test-only knob for counterpart tests: payments that cannot be sent are still
acknowledged (202) but dropped, as a service with a broken (in-memory, never drained)
queue would do. The scenario must then count them lost.
"""
from __future__ import annotations

import collections
import json
import os
import threading
import time
import urllib.error
import urllib.request
import uuid

from prometheus_client import Counter, Gauge

PAYMENTS = Counter("payments_total", "payments accepted by the service", ["outcome"])  # sent|queued|dropped
QUEUE_DEPTH = Gauge("payment_queue_depth", "payments waiting for the dependency")
DRAINED = Counter("payments_drained_total", "queued payments delivered after the dependency came back")


def payments_log_path(ack_log: str, name: str) -> str:
    return os.path.join(os.path.dirname(ack_log), "payments", f"{name}.log") if ack_log else ""


class PaymentQueue:
    def __init__(self, args):
        self.url = (args.dependency + "/pay") if args.dependency else ""
        self.timeout = args.dependency_timeout if args.dependency_timeout > 0 else None
        self.queueing = bool(args.payment_queue)
        self.queue: collections.deque[str] = collections.deque()
        self.lock = threading.Lock()
        path = payments_log_path(args.ack_log, args.name)
        self.log = None
        if path:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self.log = open(path, "a", buffering=1)
        if self.url:
            threading.Thread(target=self._drain, name="payment-drainer", daemon=True).start()

    @staticmethod
    def add_arguments(p) -> None:
        p.add_argument("--payment-queue", type=int, default=1,
                       help="1: queue payments the dependency cannot take and send them later; "
                            "0 (test-only knob): acknowledge and drop them")

    def set_queueing(self, query: str) -> tuple[int, dict]:
        """The test-only knob at run time: ``enabled=0|1``."""
        for part in query.split("&"):
            if part.startswith("enabled="):
                self.queueing = part.split("=", 1)[1] not in ("0", "false", "")
                return 200, {"queueing": self.queueing}
        return 400, {"error": "POST /api/payments/queue?enabled=0|1"}

    def _send(self, payment_id: str) -> bool:
        req = urllib.request.Request(self.url, data=json.dumps({"id": payment_id}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _record(self, payment_id: str, outcome: str) -> None:
        PAYMENTS.labels(outcome).inc()
        if self.log:
            self.log.write(f"{payment_id} {time.time():.6f} {'queued' if outcome == 'dropped' else outcome}\n")

    def pay(self) -> tuple[int, dict]:
        if not self.url:
            return 503, {"error": "no payment dependency configured"}
        payment_id = str(uuid.uuid4())
        with self.lock:
            pending = bool(self.queue)
        # While payments wait, new ones queue behind them (order kept, the dependency is
        # not hammered by every request during an outage).
        if not pending and self._send(payment_id):
            self._record(payment_id, "sent")
            return 201, {"id": payment_id, "status": "sent"}
        if self.queueing:
            with self.lock:
                self.queue.append(payment_id)
                QUEUE_DEPTH.set(len(self.queue))
            self._record(payment_id, "queued")
        else:
            self._record(payment_id, "dropped")  # acknowledged as queued: the broken-queue knob
        return 202, {"id": payment_id, "status": "queued"}

    def _drain(self) -> None:
        while True:
            with self.lock:
                head = self.queue[0] if self.queue else None
            if head is None:
                time.sleep(0.2)
                continue
            if self._send(head):
                with self.lock:
                    if self.queue and self.queue[0] == head:
                        self.queue.popleft()
                    QUEUE_DEPTH.set(len(self.queue))
                DRAINED.inc()
            else:
                time.sleep(0.5)

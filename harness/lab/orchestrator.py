"""The lab's stand-in for a kubelet, a ReplicaSet and an HPA.

It runs the api replicas (one process per replica slot, slot i in zone i mod N),
restarts a replica that died after a back-off (1 s doubling to 16 s, reset after 10 s
of good health: like CrashLoopBackOff), and scales between min and max replicas by
CPU utilisation with the HPA's formula ``ceil(current * utilisation / target)``
(scale out at once, scale in after a stabilisation window). It keeps HAProxy's
backend slots and Prometheus's target file in step, and exports its state:

  lab_replicas_desired, lab_replicas_current, lab_replicas_ready,
  lab_replica_restarts_total{replica}, lab_cpu_utilization_ratio

Run as ``python -m harness.lab.orchestrator RUN_DIR`` (``harness lab up`` does).
HTTP on 127.0.0.1: GET /state (JSON), GET /metrics, POST /scale?replicas=N,
POST /policy (JSON body, replaces the scaling policy; used by tests and plans).
"""
from __future__ import annotations

import json
import logging
import math
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from dataclasses import asdict, dataclass, field
from http.server import ThreadingHTTPServer

import psutil
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from harness.lab.config import LabConfig
from harness.lab.httpd import QuietHandler

log = logging.getLogger("orchestrator")


@dataclass
class Policy:
    """Scaling policy; the operations plan sets it (SPEC §6), these are the lab's own."""

    min_replicas: int = 3
    max_replicas: int = 6
    cpu_target: float = 0.70  # of the CPU request, like an HPA target
    scale_in_below: float = 0.30  # scale in only when utilisation is under this
    cpu_request: float = 0.20  # cores "requested" per replica
    scale_in_window: float = 15.0  # seconds of stabilisation before scaling in
    autoscale: bool = True
    # Placement: zones replicas may run in, round-robin by slot (like a topology spread
    # constraint). Empty = every zone. Tests pin all replicas to one zone with it.
    zones: list = field(default_factory=list)


@dataclass
class Replica:
    slot: int
    zone: str
    addr: str
    port: int
    proc: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    backoff: float = 3.0
    started_at: float = 0.0
    ready: bool = False
    cpu_last: float = 0.0
    cpu_last_t: float = 0.0
    utilisation: float = 0.0

    @property
    def name(self) -> str:
        return f"api-{self.slot}"

    @property
    def pid(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            return self.proc.pid
        return None


class Orchestrator:
    def __init__(self, cfg: LabConfig):
        self.cfg = cfg
        self.policy = Policy(
            min_replicas=cfg.replicas,
            max_replicas=max(cfg.replicas, cfg.max_replicas),
        )
        self._load_plan_policy()
        slots = max(cfg.replicas, cfg.max_replicas)  # HAProxy has exactly these server slots
        self.policy.max_replicas = min(self.policy.max_replicas, slots)
        self.policy.min_replicas = min(self.policy.min_replicas, self.policy.max_replicas)
        self.desired = self.policy.min_replicas
        self.replicas = {
            slot: Replica(slot, cfg.slot_zone(slot), *cfg.replica_addr(slot))
            for slot in range(slots)
        }
        self.lock = threading.RLock()
        self.util_history: deque[tuple[float, int]] = deque()  # (t, recommendation)
        self.util_avg = 0.0
        self.stopping = threading.Event()
        self.reg = CollectorRegistry()
        self.g_desired = Gauge("lab_replicas_desired", "desired api replicas", registry=self.reg)
        self.g_current = Gauge("lab_replicas_current", "running api replicas", registry=self.reg)
        self.g_ready = Gauge("lab_replicas_ready", "ready api replicas", registry=self.reg)
        self.g_util = Gauge("lab_cpu_utilization_ratio", "mean CPU use / request", registry=self.reg)
        self.g_min = Gauge("lab_replicas_min", "scaling policy minimum", registry=self.reg)
        self.g_max = Gauge("lab_replicas_max", "scaling policy maximum", registry=self.reg)
        self.c_restarts = Counter(
            "lab_replica_restarts", "replica restarts", ["replica", "zone"], registry=self.reg
        )
        self.c_scale = Counter("lab_scaling_events", "scaling events", ["direction"], registry=self.reg)

    def _load_plan_policy(self) -> None:
        path = self.cfg.path("scaling-policy.json")
        if path.exists():
            for k, v in json.loads(path.read_text()).items():
                if hasattr(self.policy, k):
                    setattr(self.policy, k, type(getattr(self.policy, k))(v))

    # -- replicas ----------------------------------------------------------
    def _argv(self, r: Replica) -> list[str]:
        cfg = self.cfg
        argv = [
            "ip", "netns", "exec", cfg.netns(r.zone),
            sys.executable, "-m", "harness.lab.service",
            "--listen", f"{r.addr}:{r.port}",
            "--name", r.name,
            "--ack-log", str(cfg.path("acks", f"{r.name}.log")),
        ]
        svc = cfg.path("service.json")
        if svc.exists():
            extra = json.loads(svc.read_text())
            for key, value in extra.items():
                argv += [f"--{key}", str(value)]
        return argv

    def _start(self, r: Replica) -> None:
        logf = open(self.cfg.path("logs", f"{r.name}.log"), "ab")
        r.proc = subprocess.Popen(
            self._argv(r), stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT
        )
        logf.close()
        r.started_at = time.time()
        r.ready = False
        r.cpu_last, r.cpu_last_t = 0.0, 0.0
        log.info("started %s pid %s in zone %s", r.name, r.proc.pid, r.zone)

    def _stop(self, r: Replica) -> None:
        if r.proc and r.proc.poll() is None:
            r.proc.terminate()
            try:
                r.proc.wait(3)
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait()
        r.proc = None
        r.ready = False

    def active(self) -> list[Replica]:
        return [self.replicas[s] for s in range(self.desired)]

    def place(self) -> None:
        """Move replicas whose slot's zone changed under the placement policy."""
        zones = [z for z in self.policy.zones if z in self.cfg.zones] or self.cfg.zones
        for slot, r in self.replicas.items():
            zone = zones[slot % len(zones)]
            if zone != r.zone:
                self._stop(r)
                r.zone = zone
                r.addr = self.cfg.zone_ip(zone)
                r.next_start = 0.0
                self._haproxy_cmd(f"set server api/{r.name} addr {r.addr} port {r.port}")
                log.info("%s placed in zone %s", r.name, zone)

    def reconcile(self) -> None:
        now = time.time()
        with self.lock:
            self.place()
            for slot, r in self.replicas.items():
                wanted = slot < self.desired
                if not wanted:
                    if r.proc:
                        self._stop(r)
                        self._haproxy(r, enabled=False)
                    continue
                if r.proc is None:
                    if now >= r.next_start:
                        self._start(r)
                        self._haproxy(r, enabled=True)
                    continue
                code = r.proc.poll()
                if code is not None:
                    # Died: count a restart and back off like CrashLoopBackOff.
                    if now - r.started_at > 10.0:
                        r.backoff = 3.0
                    r.restarts += 1
                    self.c_restarts.labels(r.name, r.zone).inc()
                    r.next_start = now + r.backoff
                    log.warning("%s exited (%s); restart in %.1fs", r.name, code, r.backoff)
                    r.backoff = min(30.0, r.backoff * 2)
                    r.proc = None
                    r.ready = False
            self._write_targets()
            self._export()

    # -- readiness and CPU ---------------------------------------------------
    def probe(self) -> None:
        now = time.time()
        total_util, n = 0.0, 0
        for r in list(self.active()):
            pid = r.pid
            if pid is None:
                r.ready = False
                continue
            try:
                with urllib.request.urlopen(f"http://{r.addr}:{r.port}/healthz", timeout=0.5):
                    r.ready = True
            except Exception:  # noqa: BLE001 - any failure means not ready
                r.ready = False
            try:
                cpu = sum(psutil.Process(pid).cpu_times()[:2])
            except psutil.Error:
                continue
            # Like the HPA's CPU initialisation period: start-up CPU is not load.
            if r.cpu_last_t and now - r.started_at > 5.0:
                dt = now - r.cpu_last_t
                if dt > 0:
                    r.utilisation = (cpu - r.cpu_last) / dt / self.policy.cpu_request
                    total_util += r.utilisation
                    n += 1
            r.cpu_last, r.cpu_last_t = cpu, now
        self.util_avg = total_util / n if n else 0.0

    def autoscale(self) -> None:
        p = self.policy
        if not p.autoscale:
            return
        now = time.time()
        current = self.desired
        util = self.util_avg
        if util > p.cpu_target:
            rec = math.ceil(current * util / p.cpu_target)
        elif util < p.scale_in_below:
            rec = max(1, math.ceil(current * util / p.cpu_target))
        else:
            rec = current
        rec = max(p.min_replicas, min(p.max_replicas, rec))
        self.util_history.append((now, rec))
        while self.util_history and now - self.util_history[0][0] > p.scale_in_window:
            self.util_history.popleft()
        if rec > current:
            self._set_desired(rec, "out")
        elif rec < current:
            # Scale in only to the highest recommendation of the whole window (HPA).
            window_max = max(r for _, r in self.util_history)
            covered = now - self.util_history[0][0] >= p.scale_in_window - 1.0
            if window_max < current and covered:
                self._set_desired(window_max, "in")

    def _set_desired(self, n: int, direction: str) -> None:
        with self.lock:
            n = max(0, min(self.policy.max_replicas, n))
            if n != self.desired:
                log.info("scale %s: %d -> %d (cpu %.2f)", direction, self.desired, n, self.util_avg)
                self.c_scale.labels(direction).inc()
                self.desired = n

    # -- HAProxy and Prometheus --------------------------------------------
    def _haproxy(self, r: Replica, enabled: bool) -> None:
        self._haproxy_cmd(f"set server api/{r.name} state {'ready' if enabled else 'maint'}")

    def _haproxy_cmd(self, cmd: str) -> None:
        sock_path = self.cfg.path("haproxy", "admin.sock")
        if not sock_path.exists():
            return
        cmd += "\n"
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                s.connect(str(sock_path))
                s.sendall(cmd.encode())
                s.recv(4096)
        except OSError as exc:
            log.warning("haproxy runtime API: %s", exc)

    def sync_haproxy(self) -> None:
        for slot, r in self.replicas.items():
            self._haproxy(r, enabled=slot < self.desired)

    def _write_targets(self) -> None:
        targets = [
            {"targets": [f"{r.addr}:{r.port}"], "labels": {"replica": r.name, "zone": r.zone, "app": "api"}}
            for r in self.active()
        ]
        path = self.cfg.path("prometheus", "replicas.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps(targets, indent=1)
        if not path.exists() or path.read_text() != body:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(body)
            tmp.replace(path)

    def _export(self) -> None:
        active = self.active()
        self.g_desired.set(self.desired)
        self.g_current.set(sum(1 for r in active if r.pid))
        self.g_ready.set(sum(1 for r in active if r.ready))
        self.g_util.set(self.util_avg)
        self.g_min.set(self.policy.min_replicas)
        self.g_max.set(self.policy.max_replicas)

    def state(self) -> dict:
        with self.lock:
            return {
                "desired": self.desired,
                "policy": asdict(self.policy),
                "cpu_utilization": round(self.util_avg, 3),
                "replicas": [
                    {
                        "name": r.name, "slot": r.slot, "zone": r.zone, "addr": f"{r.addr}:{r.port}",
                        "pid": r.pid, "ready": r.ready, "restarts": r.restarts,
                        "labels": {"app": "api", "zone": r.zone},
                        "utilization": round(r.utilisation, 3),
                    }
                    for r in self.active()
                ],
            }

    # -- main loop -------------------------------------------------------------
    def run(self) -> None:
        self.sync_haproxy()
        last_probe = 0.0
        while not self.stopping.is_set():
            self.reconcile()
            if time.time() - last_probe >= 1.0:
                last_probe = time.time()
                self.probe()
                self.autoscale()
            self.stopping.wait(0.1)
        with self.lock:
            for r in self.replicas.values():
                self._stop(r)


def serve(orch: Orchestrator, port: int) -> None:
    class Handler(QuietHandler):
        protocol_version = "HTTP/1.0"  # as before: one request per connection

        def do_GET(self) -> None:
            if self.path.startswith("/metrics"):
                self._send(200, generate_latest(orch.reg), "text/plain; version=0.0.4")
            elif self.path.startswith("/state"):
                self._send(200, json.dumps(orch.state()).encode())
            else:
                self._send(404, b"{}")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path.startswith("/scale"):
                n = int(self.path.split("replicas=")[1])
                orch._set_desired(n, "manual")
                self._send(200, json.dumps(orch.state()).encode())
            elif self.path.startswith("/policy"):
                with orch.lock:
                    for k, v in json.loads(body or b"{}").items():
                        if hasattr(orch.policy, k):
                            setattr(orch.policy, k, type(getattr(orch.policy, k))(v))
                    # Slots were made for the lab's max; the policy cannot exceed them.
                    orch.policy.max_replicas = min(orch.policy.max_replicas, len(orch.replicas))
                    orch.policy.min_replicas = min(orch.policy.min_replicas, orch.policy.max_replicas)
                    orch.desired = max(orch.policy.min_replicas, min(orch.policy.max_replicas, orch.desired))
                    orch.util_history.clear()
                    orch.place()  # moved replicas are not ready until they answer again
                self._send(200, json.dumps(orch.state()).encode())
            else:
                self._send(404, b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main() -> None:
    import signal

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = LabConfig.load(sys.argv[1])
    orch = Orchestrator(cfg)
    signal.signal(signal.SIGTERM, lambda *_: orch.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: orch.stopping.set())
    serve(orch, cfg.port("orchestrator"))
    orch.run()


if __name__ == "__main__":
    main()

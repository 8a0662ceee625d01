"""Toxiproxy between the sample service and what it calls (this kernel has no netem).

  API        127.0.0.1:toxiproxy (also its Prometheus metrics at /metrics)
  proxy db          <host_ip>:toxi-db         -> 127.0.0.1:haproxy-db (current primary)
  proxy dependency  <host_ip>:toxi-dependency -> 127.0.0.1:dependency

The proxies listen on the bridge address so that every zone namespace reaches them.
Faults add toxics (latency, jitter...) with names that the fault journal records, so
that a revert removes exactly those (:mod:`harness.targets.lab.faults.network_latency`). Toxiproxy
keeps no state across restarts: a restart loses every toxic, and ``lab up`` recreates
the proxies.
"""
from __future__ import annotations

import json
import time

import requests

from harness.errors import EnvironmentNotReady
from harness.lab import procs
from harness.lab.component import Component, Health
from harness.lab.config import LabConfig
from harness.lab.install import toxiproxy_server

TOXIC_PREFIX = "harness-"


def proxies_wanted(cfg: LabConfig) -> list[dict]:
    out = [{
        "name": "dependency",
        "listen": f"{cfg.host_ip}:{cfg.port('toxi-dependency')}",
        "upstream": f"127.0.0.1:{cfg.port('dependency')}",
        "enabled": True,
    }]
    if cfg.with_db:
        out.insert(0, {
            "name": "db",
            "listen": f"{cfg.host_ip}:{cfg.port('toxi-db')}",
            "upstream": f"127.0.0.1:{cfg.port('haproxy-db')}",
            "enabled": True,
        })
    return out


class Client:
    """toxiproxy-python bound to this lab's server.

    toxiproxy-python keeps the server address in a class attribute (one server per
    process); we set it before every call so that two labs in one process stay apart.
    """

    def __init__(self, cfg: LabConfig):
        self.host, self.port = "127.0.0.1", cfg.port("toxiproxy")

    def _server(self):
        from toxiproxy import Toxiproxy

        server = Toxiproxy()
        server.update_api_consumer(self.host, self.port)
        return server

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def running(self) -> bool:
        return bool(self._server().running())

    def proxies(self) -> dict:
        return self._server().proxies()

    def proxy(self, name: str):
        p = self._server().get_proxy(name)
        if p is None:
            raise EnvironmentNotReady(
                f"Toxiproxy has no proxy '{name}' (links here: {', '.join(sorted(self.proxies())) or 'none'})"
            )
        return p

    def populate(self, wanted: list[dict]) -> None:
        self._server().populate(wanted)
        for w in wanted:  # re-enable a proxy a fault left disabled
            p = self.proxy(w["name"])
            if not p.enabled:
                p.enable()

    def add_toxic(self, link: str, **toxic) -> None:
        self._server()
        self.proxy(link).add_toxic(**toxic)

    def remove_toxic(self, link: str, name: str) -> bool:
        """Remove a toxic by name; False when it was not there (idempotent)."""
        from toxiproxy.exceptions import NotFound

        self._server()
        try:
            p = self.proxy(link)
        except EnvironmentNotReady:
            return False
        try:
            p.destroy_toxic(name)
        except NotFound:
            return False
        return True

    def toxics(self, link: str) -> dict:
        self._server()
        return {name: t.__dict__ for name, t in self.proxy(link).toxics().items()}

    def all_toxics(self) -> dict[str, list[str]]:
        self._server()
        return {name: sorted(p.toxics()) for name, p in self.proxies().items()}


class Toxiproxy(Component):
    name = "toxiproxy"

    def __init__(self, cfg: LabConfig):
        super().__init__(cfg)
        self.client = Client(cfg)

    def start(self) -> None:
        binary = toxiproxy_server()
        if not binary:
            raise EnvironmentNotReady(
                "toxiproxy-server is not installed: build it with `go install "
                "github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0` (README set-up)"
            )
        d = self.cfg.path("toxiproxy")
        d.mkdir(parents=True, exist_ok=True)
        conf = d / "proxies.json"
        conf.write_text(json.dumps(proxies_wanted(self.cfg), indent=1))
        procs.start(self.cfg, self.name, [
            binary, "-host", "127.0.0.1", "-port", str(self.cfg.port("toxiproxy")),
            "-config", str(conf), "-proxy-metrics",
        ], env={"LOG_LEVEL": "info"})  # its default, debug, logs every API request (Prometheus'
        # scrape each second: 52 MB of log in a 36-minute soak)
        procs.wait_for(self._ready, 15, "toxiproxy", self.cfg, self.name)
        self.client.populate(proxies_wanted(self.cfg))

    def _ready(self) -> bool:
        r = requests.get(self.client.url + "/proxies", timeout=1)
        return r.ok and all(p["name"] in r.json() for p in proxies_wanted(self.cfg))

    def stop(self) -> None:
        procs.stop(self.cfg, self.name)

    def health(self) -> list[Health]:
        try:
            proxies = requests.get(self.client.url + "/proxies", timeout=1).json()
        except Exception as exc:  # noqa: BLE001
            return [Health("toxiproxy", self.client.url, False, f"not answering ({type(exc).__name__})")]
        out = [Health("toxiproxy", self.client.url, True, f"{len(proxies)} proxies")]
        for w in proxies_wanted(self.cfg):
            p = proxies.get(w["name"])
            if p is None:
                out.append(Health(f"toxiproxy {w['name']}", w["listen"], False, "missing"))
                continue
            toxics = [t["name"] for t in p.get("toxics", [])]
            detail = f"-> {p['upstream']}" + (f", toxics: {', '.join(toxics)}" if toxics else ", no toxics")
            out.append(Health(f"toxiproxy {w['name']}", p["listen"], bool(p["enabled"]), detail))
        return out

    def prometheus_jobs(self) -> list[dict]:
        return [{"job_name": "toxiproxy", "static_configs": [{"targets": [f"127.0.0.1:{self.cfg.port('toxiproxy')}"]}]}]


def wait_gone(cfg: LabConfig, link: str, names: list[str], timeout: float = 5.0) -> bool:
    c = Client(cfg)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not set(names) & set(c.toxics(link)):
            return True
        time.sleep(0.05)
    return False

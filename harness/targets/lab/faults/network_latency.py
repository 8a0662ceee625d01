"""network-latency on the lab: Toxiproxy latency toxics on a named link.

Links: ``db`` (service -> database: Toxiproxy -> HAProxy db-rw -> the primary) and
``dependency`` (service -> the stub dependency). This kernel has no netem, so latency
comes from Toxiproxy and only on links that go through it.

Parameters (catalogue ``network-latency``):
  link       db | dependency
  latency    e.g. 300ms (added per direction a toxic is on)
  jitter     e.g. 50ms (Toxiproxy adds a uniform +-jitter), default 0
  direction  downstream (responses, the default, as Toxiproxy), upstream (requests)
             or both (one toxic each way: the round trip grows by twice ``latency``)
  toxicity   share of connections affected, 0-1 (default 1)

The toxic names (``harness-<id>-<stream>``) are decided in ``prepare`` and journaled,
so ``revert`` removes exactly those, in any process, and never a toxic someone else
added.
"""
from __future__ import annotations

import time
import uuid

from harness.errors import FaultError, InvalidInput
from harness.faults.base import Fault, State
from harness.lab.toxiproxy import TOXIC_PREFIX, Client
from harness.quantities import parse_duration
from harness.targets import registry

LINKS = ("db", "dependency")


@registry.fault("lab")
class LabNetworkLatency(Fault):
    kind = "network-latency"

    def _cfg(self):
        return self.target.cfg

    def problems(self) -> list[str]:
        link = str(self.params.get("link", ""))
        if link not in LINKS:
            return [f"link '{link}' does not exist in the lab (links through Toxiproxy: {', '.join(LINKS)})"]
        if link == "db" and not self._cfg().with_db:
            return ["link 'db' needs the lab's database, and this lab runs without one (links: dependency)"]
        return []

    def prepare(self) -> State:
        p = self.params
        bad = self.problems()
        if bad:
            raise InvalidInput(f"network-latency: {bad[0]}")
        link = str(p.get("link", ""))
        try:
            latency = parse_duration(p["latency"])
            jitter = parse_duration(p.get("jitter", 0))
        except (KeyError, ValueError) as exc:
            raise InvalidInput(f"network-latency: {exc}") from None
        direction = p.get("direction", "downstream")
        if direction not in ("downstream", "upstream", "both"):
            raise InvalidInput("network-latency: direction must be downstream, upstream or both")
        toxicity = float(p.get("toxicity", 1.0))
        if not 0 <= toxicity <= 1:
            raise InvalidInput("network-latency: toxicity is a share between 0 and 1")
        streams = ["downstream", "upstream"] if direction == "both" else [direction]
        ident = uuid.uuid4().hex[:8]
        return {
            "link": link,
            "toxics": [
                {
                    "name": f"{TOXIC_PREFIX}{ident}-{s}",
                    "type": "latency",
                    "stream": s,
                    "toxicity": toxicity,
                    "attributes": {"latency": int(round(latency * 1000)), "jitter": int(round(jitter * 1000))},
                }
                for s in streams
            ],
        }

    def inject(self, state: State) -> None:
        client = Client(self._cfg())
        done = []
        try:
            for t in state["toxics"]:
                client.add_toxic(state["link"], **t)
                done.append(t["name"])
        except Exception as exc:  # noqa: BLE001
            for name in done:
                client.remove_toxic(state["link"], name)
            raise FaultError(f"network-latency: Toxiproxy refused the toxic on '{state['link']}': {exc}") from exc

    def revert(self, state: State) -> None:
        client = Client(self._cfg())
        try:
            for t in state["toxics"]:
                client.remove_toxic(state["link"], t["name"])
        except Exception as exc:  # noqa: BLE001 - e.g. Toxiproxy down: nothing left to remove
            if Client(self._cfg()).running():
                raise FaultError(f"network-latency: could not remove toxics from '{state['link']}': {exc}") from exc

    def verify_reverted(self, state: State) -> list[str]:
        client = Client(self._cfg())
        try:
            present = set(client.toxics(state["link"]))
        except Exception:  # noqa: BLE001 - Toxiproxy not running: no toxic can be left
            return []
        left = [t["name"] for t in state["toxics"] if t["name"] in present]
        return [f"toxic {n} still on link {state['link']}" for n in left]


def measure_link_latency(cfg, link: str, samples: int = 5) -> float:
    """Median seconds for a TCP connect + first byte round trip through a Toxiproxy link
    (used by benchmarks to see a toxic from outside)."""
    import socket
    import statistics

    port = cfg.port("toxi-db" if link == "db" else "toxi-dependency")
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        with socket.create_connection((cfg.host_ip, port), timeout=5) as s:
            if link == "dependency":
                s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                s.recv(1)
            else:
                # PostgreSQL SSLRequest: the server answers one byte ('N').
                s.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")
                s.recv(1)
        out.append(time.perf_counter() - t0)
    return statistics.median(out)

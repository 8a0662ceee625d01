"""Where the lab lives and which addresses and ports it uses.

One lab per machine by default. Everything it creates carries its ``prefix`` (network
namespaces, bridge, iptables chains) and lives under ``run_dir`` (logs, data, pid
files, ``lab.json``), so that ``lab down`` and ``harness cleanup`` find all of it.
Two labs on one machine are possible with another prefix, subnet, ports and run dir
(tests of the harness itself do that); the same prefix twice is refused.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.errors import EnvironmentNotReady
from harness.state import state_root


@dataclass
class LabConfig:
    prefix: str = "rh"
    subnet: str = "10.77.0"  # /24 on the lab bridge; the host side is .1
    zones: list[str] = field(default_factory=lambda: ["a", "b", "c"])
    replicas: int = 3  # api replicas at start (the orchestrator's min unless a plan says)
    max_replicas: int = 6
    port_base: int = 17000  # every port of the lab is port_base + an offset (see ports())
    with_db: bool = True
    sync_replication: bool = True
    run_dir: str = ""  # default: <state root>/lab-<prefix>
    plan: str = ""  # operations plan file (alert rules, scaling, backups)

    def __post_init__(self) -> None:
        if not self.run_dir:
            self.run_dir = str(state_root() / f"lab-{self.prefix}")
        if not (1 <= len(self.zones) <= 9):
            raise EnvironmentNotReady("the lab needs between 1 and 9 zones")
        if len(self.prefix) > 6 or not self.prefix.isalnum():
            raise EnvironmentNotReady("lab prefix must be 1-6 letters/digits (it names interfaces)")

    # -- paths ---------------------------------------------------------------
    @property
    def root(self) -> Path:
        return Path(self.run_dir)

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    # -- network -------------------------------------------------------------
    @property
    def bridge(self) -> str:
        return f"{self.prefix}-br"

    @property
    def host_ip(self) -> str:
        return f"{self.subnet}.1"

    def netns(self, zone: str) -> str:
        return f"{self.prefix}-zone-{zone}"

    def zone_ip(self, zone: str) -> str:
        return f"{self.subnet}.{10 * (self.zones.index(zone) + 1)}"

    def slot_zone(self, slot: int) -> str:
        """Replica slots are spread round-robin over the zones, like a spread constraint."""
        return self.zones[slot % len(self.zones)]

    # -- ports ---------------------------------------------------------------
    def port(self, name: str) -> int:
        offsets = {
            "lb": 0,  # HAProxy frontend for the api (what the load generator hits)
            "lb-stats": 1,  # HAProxy stats + Prometheus exporter
            "haproxy-db": 2,  # HAProxy -> current Patroni primary (read-write)
            "prometheus": 10,
            "alertmanager": 11,
            "alertmanager-cluster": 12,
            "webhook": 13,
            "load-master": 14,  # a distributed run's Locust master, on the lab bridge (docs/load-workers.md)
            "orchestrator": 20,
            "toxiproxy": 30,
            "toxi-db": 31,  # service -> database, through Toxiproxy
            "toxi-dependency": 32,  # service -> dependency, through Toxiproxy
            "dependency": 40,
            "postgres": 50,  # in every zone namespace (own IP), same port
            "patroni": 51,
            "etcd-client": 52,
            "etcd-peer": 53,
            "postgres-exporter": 54,  # in every zone namespace, beside its member
            "replica": 100,  # replica slot i listens on replica + i in its zone
        }
        return self.port_base + offsets[name]

    def replica_addr(self, slot: int) -> tuple[str, int]:
        return self.zone_ip(self.slot_zone(slot)), self.port("replica") + slot

    @property
    def load_host(self) -> str:
        return f"http://127.0.0.1:{self.port('lb')}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.port('prometheus')}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.port('alertmanager')}"

    # -- persistence ---------------------------------------------------------
    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.path("lab.json.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(self.path("lab.json"))

    @classmethod
    def load(cls, run_dir: str | Path) -> "LabConfig":
        path = Path(run_dir) / "lab.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise EnvironmentNotReady(
                f"no lab at {run_dir} (run `harness lab up` first)"
            ) from None
        return cls(**data)


def default_run_dir(prefix: str = "rh") -> Path:
    return state_root() / f"lab-{prefix}"

"""Zones as network namespaces on a bridge the lab creates.

Each zone is a namespace ``<prefix>-zone-<z>`` with one veth into the bridge
``<prefix>-br`` (host side ``<subnet>.1``). Every process of a zone (api replicas,
database member, etcd member) listens on the zone's own address, so cutting the zone
off cuts all of them at once, for real.
"""
from __future__ import annotations

from harness.lab import sh
from harness.lab.config import LabConfig

ZONE_CHAIN = "RH-ZONE-LOSS"  # inside each zone namespace; empty unless a zone-loss is active


def _veth_host(cfg: LabConfig, zone: str) -> str:
    return f"{cfg.prefix}-{zone}-h"


def up(cfg: LabConfig) -> None:
    """Create bridge, namespaces and links (idempotent)."""
    if not sh.ok("ip", "link", "show", cfg.bridge):
        sh.run("ip", "link", "add", cfg.bridge, "type", "bridge")
    sh.run("ip", "addr", "replace", f"{cfg.host_ip}/24", "dev", cfg.bridge)
    sh.run("ip", "link", "set", cfg.bridge, "up")
    existing = set(sh.run("ip", "netns", "list").stdout.split())
    for zone in cfg.zones:
        ns = cfg.netns(zone)
        if ns not in existing:
            sh.run("ip", "netns", "add", ns)
        host = _veth_host(cfg, zone)
        if not sh.ok("ip", "link", "show", host):
            sh.run("ip", "link", "add", host, "type", "veth", "peer", "name", f"{cfg.prefix}-{zone}-n")
            sh.run("ip", "link", "set", f"{cfg.prefix}-{zone}-n", "netns", ns)
            sh.run("ip", "link", "set", f"{cfg.prefix}-{zone}-n", "name", "eth0", netns=ns)
        sh.run("ip", "link", "set", host, "master", cfg.bridge)
        sh.run("ip", "link", "set", host, "up")
        sh.run("ip", "addr", "replace", f"{cfg.zone_ip(zone)}/24", "dev", "eth0", netns=ns)
        sh.run("ip", "link", "set", "lo", "up", netns=ns)
        sh.run("ip", "link", "set", "eth0", "up", netns=ns)
        # A chain that zone-loss fills and empties; hooked in first so it always wins.
        if not sh.ok("iptables", "-n", "-L", ZONE_CHAIN, netns=ns):
            sh.run("iptables", "-N", ZONE_CHAIN, netns=ns)
        for hook in ("INPUT", "OUTPUT"):
            if not sh.ok("iptables", "-C", hook, "-j", ZONE_CHAIN, netns=ns):
                sh.run("iptables", "-I", hook, "1", "-j", ZONE_CHAIN, netns=ns)


def down(cfg: LabConfig) -> None:
    """Remove every namespace and link the lab created (idempotent)."""
    existing = set(sh.run("ip", "netns", "list", check=False).stdout.split())
    for zone in cfg.zones:
        if cfg.netns(zone) in existing:
            sh.run("ip", "netns", "del", cfg.netns(zone), check=False)
        if sh.ok("ip", "link", "show", _veth_host(cfg, zone)):
            sh.run("ip", "link", "del", _veth_host(cfg, zone), check=False)
    if sh.ok("ip", "link", "show", cfg.bridge):
        sh.run("ip", "link", "del", cfg.bridge, check=False)


def leftovers(cfg: LabConfig) -> list[str]:
    """Names of lab network objects still present (for `lab down` verification)."""
    found = []
    namespaces = set(sh.run("ip", "netns", "list", check=False).stdout.split())
    found += [f"netns {cfg.netns(z)}" for z in cfg.zones if cfg.netns(z) in namespaces]
    links = sh.run("ip", "-o", "link", "show", check=False).stdout
    for line in links.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name == cfg.bridge or name.startswith(f"{cfg.prefix}-"):
            found.append(f"link {name}")
    return found


def zone_status(cfg: LabConfig, zone: str) -> str:
    """'up', 'cut (blackhole)', 'cut (refuse)' or 'missing'."""
    ns = cfg.netns(zone)
    proc = sh.run("iptables", "-S", ZONE_CHAIN, netns=ns, check=False)
    if proc.returncode != 0:
        return "missing"
    rules = [r for r in proc.stdout.splitlines() if r.startswith("-A")]
    if not rules:
        return "up"
    return "cut (refuse)" if any("REJECT" in r for r in rules) else "cut (blackhole)"


def cut_zone(cfg: LabConfig, zone: str, mode: str) -> None:
    """Cut a zone off: blackhole (DROP: peers hang until timeouts) or refuse (RST: fail fast).

    Loopback inside the zone keeps working, as inside a real zone.
    """
    ns = cfg.netns(zone)
    if mode == "refuse":
        rules = [
            ["-A", ZONE_CHAIN, "-o", "eth0", "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
            ["-A", ZONE_CHAIN, "-i", "eth0", "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
            ["-A", ZONE_CHAIN, "-i", "eth0", "-j", "DROP"],
            ["-A", ZONE_CHAIN, "-o", "eth0", "-j", "DROP"],
        ]
    else:
        rules = [
            ["-A", ZONE_CHAIN, "-i", "eth0", "-j", "DROP"],
            ["-A", ZONE_CHAIN, "-o", "eth0", "-j", "DROP"],
        ]
    # iptables-restore applies all rules in one atomic call (one fork, one commit).
    body = "*filter\n" + "".join(" ".join(r) + "\n" for r in rules) + "COMMIT\n"
    import subprocess

    subprocess.run(
        ["ip", "netns", "exec", ns, "iptables-restore", "--noflush"],
        input=body, text=True, check=True, capture_output=True,
    )


def restore_zone(cfg: LabConfig, zone: str) -> None:
    ns = cfg.netns(zone)
    sh.run("iptables", "-F", ZONE_CHAIN, netns=ns, check=False)

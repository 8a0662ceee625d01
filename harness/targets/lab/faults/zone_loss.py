"""Zone loss on the lab: the zone's namespace is cut off for real."""
from __future__ import annotations

from harness.errors import FaultError
from harness.faults.base import Fault, State
from harness.lab import network
from harness.targets import registry


@registry.fault("lab")
class LabZoneLoss(Fault):
    """Every process in the zone (api replicas, DB member, etcd member) becomes
    unreachable at once. ``zone`` is a zone name or a role: ``db-primary``,
    ``db-sync-standby`` or ``db-replica`` (the zone holding it now). ``blackhole`` drops packets (peers hang until their
    timeouts); ``refuse`` answers TCP with resets, but today only the zone's own processes
    get them: the reset answering a packet from outside leaves through the zone's outbound
    REJECT rule, which drops it (a reset is never answered), so peers outside hang as with
    blackhole (measured: a connect from the host times out; with the zone's resets let out
    first it is refused at once). The fix is that one rule; every zone-cut test was
    calibrated on today's behaviour, so it waits for a full run of them."""

    kind = "zone-loss"

    #: Zones named by what runs there; resolved when the fault is prepared (journaled).
    ROLES = {
        "db-primary": ("leader", "master", "primary"),
        "db-sync-standby": ("sync_standby",),
        "db-replica": ("replica",),  # an asynchronous replica: losing it must not block writes
    }

    def _zone_by_role(self, name: str) -> str:
        from harness.lab import db

        state = db.cluster_state(self.target.cfg) or {}
        for member in state.get("members", []):
            if member.get("role") in self.ROLES[name]:
                return db.zone_of(member["name"])
        roles = {m["name"]: m.get("role") for m in state.get("members", [])}
        raise FaultError(f"zone-loss: no zone holds a {name} now (members: {roles or 'none answering'})")

    MODES = ("blackhole", "refuse")

    def problems(self) -> list[str]:
        cfg = self.target.cfg
        out = []
        zone = str(self.params.get("zone", "")).removeprefix("zone-")
        if zone in self.ROLES:
            if not cfg.with_db:
                out.append(f"zone '{zone}' names a database role, but this lab runs without a database "
                           f"(zones: {', '.join(cfg.zones)})")
        elif zone not in cfg.zones:
            out.append(f"no zone {self.params.get('zone')!r} in the lab (zones: {', '.join(cfg.zones)}; "
                       f"or a role: {', '.join(self.ROLES)})")
        mode = self.params.get("mode", "blackhole")
        if mode not in self.MODES:
            out.append(f"mode {mode!r} is not available on the lab (lab modes: {', '.join(self.MODES)}; "
                       "drain and not-ready are Kubernetes modes)")
        return out

    def preview(self) -> str | None:
        zone = str(self.params["zone"]).removeprefix("zone-")
        if zone in self.ROLES:
            try:
                zone = self._zone_by_role(zone)
            except FaultError as exc:
                from harness.errors import InvalidInput

                raise InvalidInput(str(exc)) from None
        here = [r["name"] for r in self.target.replicas() if r.get("zone") == zone]
        return f"zone {zone} (replicas there now: {', '.join(here) or 'none'})"

    def prepare(self) -> State:
        cfg = self.target.cfg
        zone = str(self.params["zone"]).removeprefix("zone-")
        if zone in self.ROLES:
            if not cfg.with_db:
                raise FaultError(f"zone-loss zone={zone}: this lab runs without a database")
            zone = self._zone_by_role(zone)
        if zone not in cfg.zones:
            raise FaultError(f"zone-loss: no zone {self.params['zone']!r} in the lab (zones: {', '.join(cfg.zones)})")
        mode = self.params.get("mode", "blackhole")
        if mode not in ("blackhole", "refuse"):
            raise FaultError(f"zone-loss mode {mode!r} is not available on the lab (blackhole or refuse)")
        return {"zone": zone, "mode": mode}

    def inject(self, state: State) -> None:
        network.cut_zone(self.target.cfg, state["zone"], state["mode"])

    def revert(self, state: State) -> None:
        network.restore_zone(self.target.cfg, state["zone"])

    def verify_reverted(self, state: State) -> list[str]:
        status = network.zone_status(self.target.cfg, state["zone"])
        return [] if status in ("up", "missing") else [f"zone {state['zone']} still {status}"]

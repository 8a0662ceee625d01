"""db-failover on the lab: the Patroni primary dies as when its node dies, or a switchover.

Parameters (catalogue ``db-failover``):
  mode    crash (default): SIGKILL Patroni *and* its PostgreSQL together on the member,
          as when its node dies; the others elect a new primary after Patroni's ttl
          (~20 s). Revert starts that member again: it rejoins as a replica (pg_rewind).
          switchover: Patroni's REST ``POST /switchover`` (planned; ~2-3 s of outage),
          scheduled 1 s ahead so that inject() returns before it starts.
          Revert: nothing to undo (the cluster has a healthy primary); it makes sure
          every member runs.
  member  pg-<zone> (default: whichever member is primary when the fault is prepared;
          the harness finds it through Patroni's REST API)

The journaled state names the member and its zone, which is all revert needs.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from harness.errors import FaultError, InvalidInput
from harness.faults.base import Fault, State
from harness.lab import db
from harness.targets import registry


@registry.fault("lab")
class LabDbFailover(Fault):
    kind = "db-failover"

    def _cfg(self):
        return self.target.cfg

    def problems(self) -> list[str]:
        cfg = self._cfg()
        if not cfg.with_db:
            return ["this lab runs without a database (start it without --no-db)"]
        member = self.params.get("member")
        members = [db.member_name(z) for z in cfg.zones]
        if member and member not in members:
            return [f"no member {member!r} in the lab (members: {', '.join(members)})"]
        return []

    def prepare(self) -> State:
        cfg = self._cfg()
        if not cfg.with_db:
            raise InvalidInput("db-failover needs the lab's database (the lab runs without one)")
        mode = self.params.get("mode", "crash")
        if mode not in ("crash", "switchover"):
            raise InvalidInput("db-failover: mode must be crash or switchover")
        primary = db.primary(cfg)
        if primary is None:
            raise FaultError("db-failover: the database has no primary right now (nothing to fail over)")
        member = self.params.get("member") or primary
        names = [db.member_name(z) for z in cfg.zones]
        if member not in names:
            raise InvalidInput(f"db-failover: no member '{member}' (members: {', '.join(names)})")
        if mode == "switchover" and member != primary:
            raise InvalidInput(f"db-failover: switchover moves the primary away; '{member}' is not "
                               f"the primary ({primary} is)")
        return {"mode": mode, "member": member, "zone": db.zone_of(member), "primary_before": primary}

    def inject(self, state: State) -> None:
        cfg = self._cfg()
        if state["mode"] == "crash":
            try:
                pids = db.kill_member(cfg, state["zone"])
            except FaultError as exc:
                raise FaultError(f"db-failover: {exc}") from exc
            if not pids:
                raise FaultError(f"db-failover: member {state['member']} was not running")
            state["killed_pids"] = pids
            state["killed_at"] = time.time()
            return
        # Scheduled one second ahead: Patroni's REST call otherwise blocks until the
        # switchover is over, and checks that start once inject() returns would miss
        # the whole write outage. Patroni acts on it in its next HA loop (loop_wait 1 s).
        from datetime import datetime, timedelta, timezone

        at = datetime.now(timezone.utc) + timedelta(seconds=1.0)
        state["scheduled_at"] = at.timestamp()
        body = json.dumps({"leader": state["member"], "scheduled_at": at.isoformat()}).encode()
        last = None
        for zone in [state["zone"], *[z for z in cfg.zones if z != state["zone"]]]:
            req = urllib.request.Request(db.patroni_url(cfg, zone) + "/switchover", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    state["response"] = r.read().decode()[:200]
                    return
            except urllib.error.HTTPError as exc:
                raise FaultError(f"db-failover: Patroni refused the switchover: {exc.read().decode()[:300]}") from exc
            except OSError as exc:
                last = exc
        raise FaultError(f"db-failover: no Patroni member answered the switchover request ({last})")

    def revert(self, state: State) -> None:
        cfg = self._cfg()
        for zone in cfg.zones:
            # Idempotent: a running member is left alone; a killed one starts and rejoins.
            db.start_member(cfg, zone)
        db.wait_member_running(cfg, state["zone"], timeout=float(self.params.get("rejoin-timeout", 60)))

    def verify_reverted(self, state: State) -> list[str]:
        """Every member, asked itself, runs: one primary, the others streaming."""
        cfg = self._cfg()
        problems = []
        views = db.member_roles(cfg)
        primaries = [n for n, v in views.items() if v.get("role") in ("primary", "master") and v.get("state") == "running"]
        if len(primaries) != 1:
            problems.append(f"{len(primaries)} primaries ({', '.join(primaries) or 'none'})")
        for zone in cfg.zones:
            why = db.member_ok(cfg, zone)
            if why is not None:
                problems.append(f"member {db.member_name(zone)} is {why}")
        return problems

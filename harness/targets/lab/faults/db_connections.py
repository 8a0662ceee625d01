"""db-connections on the lab: fill a PostgreSQL member's connection slots, as a leaking
pool or a runaway batch job does (seed 002's "DB connections > 80 % of max" alert).

Parameters (catalogue ``db-connections``):
  fill    how full the member's slots are while the fault is in: a percentage of its
          max_connections (default 85 %). The harness opens, as the application's own
          user, as many idle connections as it takes to get there from what is in use
          at injection; it never takes the slots reserved for superusers, so the
          members' own tooling keeps working.
  member  pg-<zone> (default: the primary when the fault is prepared)

The connections are held by the harness and carry the application_name
``harness-connection-hog``. Revert closes them and then terminates any backend with that
name on every member, so a revert in a new process (``harness cleanup`` after a crash)
works from the journaled state alone; a crashed harness's connections close with it.
"""
from __future__ import annotations

import math

from harness.errors import FaultError, InvalidInput
from harness.faults.base import Fault, State
from harness.lab import db
from harness.targets import registry

APP_NAME = "harness-connection-hog"


def _percent(value) -> float:
    text = str(value).strip().rstrip("%")
    try:
        p = float(text)
    except ValueError:
        raise InvalidInput(f"db-connections: fill must be a percentage such as 85% (got {value!r})") from None
    if not 0 < p < 100:
        raise InvalidInput(f"db-connections: fill must be between 0 and 100 % (got {value!r})")
    return p


@registry.fault("lab")
class LabDbConnections(Fault):
    kind = "db-connections"

    def __init__(self, target, params):
        super().__init__(target, params)
        self._held: list = []

    def problems(self) -> list[str]:
        cfg = self.target.cfg
        if not cfg.with_db:
            return ["this lab runs without a database (start it without --no-db)"]
        out = []
        try:
            _percent(self.params.get("fill", "85%"))
        except InvalidInput as exc:
            out.append(str(exc))
        member = self.params.get("member")
        members = [db.member_name(z) for z in cfg.zones]
        if member and member not in members:
            out.append(f"no member {member!r} in the lab (members: {', '.join(members)})")
        return out

    def prepare(self) -> State:
        cfg = self.target.cfg
        if not cfg.with_db:
            raise InvalidInput("db-connections needs the lab's database (the lab runs without one)")
        fill = _percent(self.params.get("fill", "85%"))
        member = self.params.get("member") or db.primary(cfg)
        if member is None:
            raise FaultError("db-connections: the database has no primary right now")
        return {"member": member, "zone": db.zone_of(member), "fill_percent": fill}

    def _superuser(self, zone: str):
        import psycopg

        return psycopg.connect(db.dsn(self.target.cfg, zone, dbname="postgres"), autocommit=True, connect_timeout=3)

    def inject(self, state: State) -> None:
        import psycopg

        cfg, zone = self.target.cfg, state["zone"]
        with self._superuser(zone) as conn:
            max_conn = int(conn.execute("SHOW max_connections").fetchone()[0])
            reserved = int(conn.execute("SHOW superuser_reserved_connections").fetchone()[0])
            (in_use,) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                                     ).fetchone()
        want_total = math.ceil(max_conn * state["fill_percent"] / 100.0)
        # Never into the superuser-reserved slots, and leave one for the service.
        ceiling = max_conn - reserved - 1
        to_open = min(want_total, ceiling) - int(in_use)
        state.update({"max_connections": max_conn, "in_use_before": int(in_use), "wanted_in_use": want_total})
        if to_open <= 0:
            state["opened"] = 0
            return
        errors = []
        for _ in range(to_open):
            try:
                self._held.append(psycopg.connect(db.dsn(cfg, zone), autocommit=True, connect_timeout=3,
                                                  application_name=APP_NAME))
            except psycopg.OperationalError as exc:
                errors.append(str(exc).splitlines()[0])
                break
        state["opened"] = len(self._held)
        if errors and not self._held:
            raise FaultError(f"db-connections: could not open a connection to {state['member']}: {errors[0]}")
        if errors:
            state["stopped_early"] = errors[0]

    def revert(self, state: State) -> None:
        held_here = bool(self._held)
        for conn in self._held:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a broken connection is closed anyway
                pass
        self._held.clear()
        errors = []
        for zone in self.target.cfg.zones:
            try:
                with self._superuser(zone) as conn:
                    # pg_terminate_backend only signals; with a timeout (PostgreSQL 14+) it
                    # waits until the backend has gone, so the slots are free on return.
                    conn.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                                 "WHERE application_name = %s", (APP_NAME,))
            except Exception as exc:  # noqa: BLE001 - collected: the fault's own member must answer (below)
                errors.append(f"{db.member_name(zone)}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        own = state.get("member")
        if not held_here and any(e.startswith(f"{own}:") for e in errors):
            # A new process (cleanup after a crash) cannot close them itself: the member
            # that holds them must answer, or the fault stays live to be reverted again.
            raise FaultError(f"db-connections: {own} did not answer to close the held connections ("
                             + "; ".join(errors) + ")")

    def verify_reverted(self, state: State) -> list[str]:
        problems = []
        for zone in self.target.cfg.zones:
            try:
                with self._superuser(zone) as conn:
                    (n,) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                        (APP_NAME,)).fetchone()
            except Exception as exc:  # noqa: BLE001 - unreadable: the fault's member must be read
                if db.member_name(zone) == state.get("member"):
                    problems.append(f"could not check {db.member_name(zone)} for the fault's connections "
                                    f"({type(exc).__name__})")
                continue
            if n:
                problems.append(f"{n} connections of the fault still open on {db.member_name(zone)}")
        return problems

    def preview(self) -> str | None:
        cfg = self.target.cfg
        member = self.params.get("member") or db.primary(cfg)
        return f"would hold idle connections on {member} until {self.params.get('fill', '85%')} of its slots are in use"

"""writes-resume and db-quorum on the lab.

writes-resume  within (from injection), max-lost-writes (default: 0 in synchronous
               mode; in asynchronous mode no limit, but the count is always reported).
  * Write outage, measured from the database itself: a probe inserts a row into
    ``harness_probe`` every 0.1 s over the service's own path (Toxiproxy -> HAProxy
    db-rw -> primary). Outage = injection -> first successful write after the first
    failed one ("kill to first successful write"); 0 when no write failed.
    The same is measured from the service's acknowledged writes (the ack logs under
    <run_dir>/acks/): the largest gap after the injection.
  * Lost acknowledged writes: every id the api replicas acknowledged since the run
    started (``<uuid> <epoch>`` lines in <run_dir>/acks/api-N.log) that is missing from
    the new primary's ``orders`` table, plus probe rows that were committed but are
    missing. Counted 2 s after writes resumed (the ack logs are line-buffered).
db-quorum      within (optional: longest time allowed without a primary).
  Samples every member's own view (Patroni ``GET /patroni``) and every etcd member's
  health every 0.25 s from injection until the fault is reverted and the cluster is
  whole again. Fails on two primaries at once (split brain), on a lost etcd quorum, on
  no primary at the end, or on a primary-less stretch longer than ``within``.
"""
from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from harness.checks.base import Check, CheckResult, RunClock
from harness.lab import db
from harness.quantities import format_duration, parse_duration
from harness.targets import registry

PROBE_EVERY = 0.1
SAMPLE_EVERY = 0.25


def read_acks(run_dir: Path, since: float = 0.0, until: float | None = None) -> list[tuple[str, float]]:
    """(id, epoch) of every acknowledged write in the ack logs, in time order."""
    out = []
    for f in sorted(Path(run_dir, "acks").glob("*.log")):
        for line in f.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) != 2:
                continue  # a line being written right now
            try:
                t = float(parts[1])
            except ValueError:
                continue
            if t >= since and (until is None or t <= until):
                out.append((parts[0], t))
    out.sort(key=lambda x: x[1])
    return out


def missing_ids(cfg, ids: list[str], table: str = "orders") -> list[str]:
    """Ids not present in ``table`` on the current primary."""
    import psycopg

    present: set[str] = set()
    with psycopg.connect(db.dsn(cfg), autocommit=True) as conn:
        for i in range(0, len(ids), 5000):
            batch = ids[i:i + 5000]
            rows = conn.execute(f"SELECT id::text FROM {table} WHERE id = ANY(%s::uuid[])", (batch,)).fetchall()
            present.update(r[0] for r in rows)
    return [i for i in ids if i not in present]


def largest_gap(times: list[float], after: float) -> tuple[float, float] | None:
    """(start, end) of the largest gap between consecutive times that ends after ``after``."""
    best = None
    prev = None
    for t in times:
        if prev is not None and t > after and (best is None or t - prev > best[1] - best[0]):
            best = (prev, t)
        prev = t
    return best


class AckTail:
    """New ack timestamps since the last call (reads only what the logs gained)."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir, "acks")
        self.offsets = {f: f.stat().st_size for f in self.dir.glob("*.log")} if self.dir.exists() else {}
        self.seen_any = False
        self.last_before = 0.0  # the newest ack already in the logs when we started
        for f, size in self.offsets.items():
            try:
                with open(f, "rb") as fh:
                    fh.seek(max(0, size - 256))
                    lines = fh.read().splitlines()
                self.last_before = max(self.last_before, float(lines[-1].split()[1]))
            except (OSError, IndexError, ValueError):
                continue

    def new_times(self) -> list[float]:
        out = []
        for f in self.dir.glob("*.log") if self.dir.exists() else []:
            off = self.offsets.get(f, 0)
            try:
                with open(f, "rb") as fh:
                    fh.seek(off)
                    data = fh.read()
            except OSError:
                continue
            complete = data.rfind(b"\n") + 1  # a line still being written waits
            self.offsets[f] = off + complete
            for line in data[:complete].splitlines():
                parts = line.split()
                if len(parts) == 2:
                    try:
                        out.append(float(parts[1]))
                    except ValueError:
                        pass
        if out:
            self.seen_any = True
        return out


class WriteProbe:
    """Inserts a row every PROBE_EVERY seconds over the service's path; records outcomes."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.dsn = db.dsn(cfg, via="toxiproxy")
        self.results: list[tuple[float, bool, str]] = []  # (time done, ok, id or error)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="write-probe")

    def start(self) -> "WriteProbe":
        self.thread.start()
        return self

    def _run(self) -> None:
        import psycopg

        conn = None
        while not self.stop.is_set():
            t_next = time.time() + PROBE_EVERY
            rid = str(uuid.uuid4())
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=1,
                                           options="-c statement_timeout=2000")
                    conn.execute("CREATE TABLE IF NOT EXISTS harness_probe (id uuid PRIMARY KEY, t double precision)")
                conn.execute("INSERT INTO harness_probe (id, t) VALUES (%s, %s)", (rid, time.time()))
                self.results.append((time.time(), True, rid))
            except Exception as exc:  # noqa: BLE001 - every failure is a data point
                self.results.append((time.time(), False, type(exc).__name__))
                try:
                    if conn is not None:
                        conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
            self.stop.wait(max(0.0, t_next - time.time()))
        if conn is not None:
            conn.close()

    def outage(self, after: float) -> dict:
        """First failure after ``after`` and the first success after it."""
        first_fail = resume = None
        failures = 0
        for t, ok, _ in self.results:
            if t < after:
                continue
            if not ok:
                failures += 1
                if first_fail is None:
                    first_fail = t
            elif first_fail is not None and resume is None:
                resume = t
        return {"first_failure": first_fail, "resumed": resume, "failures": failures}

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(5)


def _leader(cfg) -> str | None:
    """The member the cluster names primary now (evidence for a failover)."""
    state = db.cluster_state(cfg, timeout=0.5) or {}
    for m in state.get("members", []):
        if m.get("role") in ("leader", "master", "primary"):
            return m.get("name")
    return None


@registry.check("lab")
class LabWritesResume(Check):
    kind = "writes-resume"

    def problems(self) -> list[str]:
        return [] if self.target.cfg.with_db else ["this lab runs without a database"]

    def run(self, clock: RunClock) -> CheckResult:
        cfg = self.target.cfg
        within = parse_duration(self.params["within"])
        max_lost = self.params.get("max-lost-writes")
        sync = db.synchronous(cfg)
        if sync is None:
            sync = cfg.sync_replication
        if max_lost is None and sync:
            max_lost = 0
        t0 = clock.injected_at or time.time()
        probe = WriteProbe(cfg).start()
        tail = AckTail(cfg.root)
        self.leader_at_resume = None
        deadline = t0 + within
        last_ack = tail.last_before
        try:
            while True:
                o = probe.outage(t0)
                last_ack = max([last_ack, *tail.new_times()])
                probe_done = o["resumed"] is not None or (o["first_failure"] is None and clock.reverted.is_set())
                if o["resumed"] is not None and self.leader_at_resume is None:
                    self.leader_at_resume = _leader(cfg)
                # The service counts too when it was writing: wait for its first write
                # after the database took writes again.
                writing = tail.seen_any or last_ack > t0 - 5.0
                service_done = (not writing) or last_ack >= (o["resumed"] or t0)
                if probe_done and service_done:
                    break
                if time.time() >= deadline + 1.0 or not clock.wait_until(time.time() + 0.1):
                    break
            # Keep probing briefly so that ack logs catch up and the outcome is stable.
            clock.wait_until(time.time() + 2.0)
        finally:
            probe.finish()
        o = probe.outage(t0)
        measured: dict = {
            "within_s": within,
            "replication": "synchronous" if sync else "asynchronous",
            "probe_writes": sum(1 for r in probe.results if r[1]),
            "probe_failures": o["failures"],
        }
        # The database's view (the probe over the service's path).
        if o["first_failure"] is None:
            db_outage = 0.0
        elif o["resumed"] is None:
            db_outage = None
            measured["probe_first_failure_after_s"] = round(o["first_failure"] - t0, 3)
        else:
            db_outage = o["resumed"] - t0
            measured["probe_failing_for_s"] = round(o["resumed"] - o["first_failure"], 3)
        measured["db_write_outage_s"] = None if db_outage is None else round(db_outage, 3)
        # The service's view: its acknowledged writes (what its users saw). It decides
        # when the service wrote at all after the injection; the probe decides otherwise.
        acks = read_acks(cfg.root, since=clock.started_at - 5.0)
        measured["acked_writes"] = len(acks)
        after = [t for _, t in acks if t > t0]
        service_outage = None
        if after:
            gap = largest_gap([t for _, t in acks], after=t0)
            if gap is not None:
                measured["ack_largest_gap_s"] = round(gap[1] - gap[0], 3)
                # A gap under 0.5 s is ordinary spacing between writes, not an outage.
                service_outage = gap[1] - t0 if gap[1] - gap[0] >= 0.5 else 0.0
            else:
                service_outage = 0.0
            measured["service_write_outage_s"] = round(service_outage, 3)
        if service_outage is not None:
            outage, measured["decided_by"] = service_outage, "service acks"
        else:
            outage, measured["decided_by"] = db_outage, "probe"
        measured["write_outage_s"] = None if outage is None else round(outage, 3)
        # Writes that came back only once the fault was reverted prove nothing about a
        # failover: the revert brought the old primary back (a single-member database
        # does exactly that). Resumption must happen while the fault is still in place.
        resumed_at = None if outage is None or outage == 0 else t0 + outage
        revert_began = clock.revert_started_at or clock.reverted_at
        after_revert = (resumed_at is not None and revert_began is not None
                        and resumed_at >= revert_began)
        if resumed_at is not None:
            measured["resumed_phase"] = "after the revert" if after_revert else "while the fault was active"
        if self.leader_at_resume:
            measured["primary_when_writes_resumed"] = self.leader_at_resume
        lost: list[str] | None = None
        try:
            lost = missing_ids(cfg, [i for i, _ in acks])
            probe_ok = [r[2] for r in probe.results if r[1]]
            lost_probe = missing_ids(cfg, probe_ok, table="harness_probe")
            measured["lost_acked_writes"] = len(lost)
            measured["lost_probe_writes"] = len(lost_probe)
            measured["lost_examples"] = lost[:5]
            lost = lost + lost_probe
        except Exception as exc:  # noqa: BLE001
            measured["lost_acked_writes"] = None
            measured["count_error"] = f"{type(exc).__name__}: {exc}"
        parts = []
        ok = True
        if after_revert:
            ok = False
            members = len(cfg.zones)
            parts.append(f"no failover happened: writes resumed only {format_duration(resumed_at - revert_began)} "
                         f"after the fault's revert began ({format_duration(outage)} after the injection), i.e. when the "
                         f"old primary came back, never while it was down"
                         + (" (the database has a single member: nothing to fail over to)" if members == 1 else ""))
        if outage is None:
            ok = False
            parts.append(f"writes did not resume within {format_duration(within)}")
        else:
            parts.append(f"write outage {format_duration(outage)} ({measured['decided_by']}; database itself: "
                         + (format_duration(db_outage) if db_outage is not None else "did not resume") + ")")
            if outage > within:
                ok = False
                parts.append(f"longer than {format_duration(within)}")
        if lost is None:
            ok = False
            parts.append("lost writes could not be counted: " + measured.get("count_error", ""))
        else:
            parts.append(f"{len(lost)} acknowledged writes lost of {len(acks) + measured['probe_writes']} "
                         f"({measured['replication']} replication)")
            if max_lost is not None and len(lost) > int(max_lost):
                ok = False
                parts.append(f"more than the {max_lost} allowed")
        evidence = [
            f"write probe over the service's path: {measured['probe_writes']} writes, {o['failures']} failed",
            f"the replicas' ack logs: {measured['acked_writes']} acknowledged writes",
            "lost writes counted on the primary after writes resumed" if lost is not None else "lost writes not counted",
        ]
        if measured.get("resumed_phase"):
            evidence.append(f"writes resumed {measured['resumed_phase']}")
        return CheckResult(self.kind, ok, "; ".join(parts), measured, evidence)


@registry.check("lab")
class LabDbQuorum(Check):
    kind = "db-quorum"

    def problems(self) -> list[str]:
        return [] if self.target.cfg.with_db else ["this lab runs without a database"]

    def _sample(self, cfg) -> tuple[list[str], int, bool]:
        """(primaries, etcd members answering, etcd has a leader).

        Quorum means a majority of members *answering*: a member that answers while
        the survivors elect a new leader (after the leader's zone was lost) is part of
        the quorum; that election is measured separately as time without a leader."""
        primaries = []
        for name, view in db.member_roles(cfg, timeout=0.3).items():
            if view.get("role") in ("primary", "master") and view.get("state") == "running":
                primaries.append(name)
        answering, leader = 0, False
        for zone in cfg.zones:
            try:
                db._get_json(db.etcd_url(cfg, zone) + "/version", 0.3)
            except Exception:  # noqa: BLE001
                continue
            answering += 1
            try:
                if db._get_json(db.etcd_url(cfg, zone) + "/health", 0.3).get("health") in ("true", True):
                    leader = True
            except Exception:  # noqa: BLE001 - 503 while there is no leader
                pass
        return primaries, answering, leader

    def run(self, clock: RunClock) -> CheckResult:
        cfg = self.target.cfg
        within = parse_duration(self.params["within"]) if self.params.get("within") is not None else None
        t0 = clock.injected_at or time.time()
        quorum = len(cfg.zones) // 2 + 1
        max_primaries = 0
        split_at = None
        no_primary_since = None
        longest_no_primary = total_no_primary = 0.0
        quorum_lost_s = 0.0
        no_leader_s = 0.0
        seen: list[str] = []
        samples = 0
        last = time.time()
        settled_since = None
        while True:
            now = time.time()
            primaries, healthy, has_leader = self._sample(cfg)
            samples += 1
            dt = now - last
            last = now
            if not has_leader:
                no_leader_s += dt
            max_primaries = max(max_primaries, len(primaries))
            if len(primaries) > 1 and split_at is None:
                split_at = now
            if primaries and (not seen or seen[-1] != primaries[0]):
                seen.append(primaries[0])
            if not primaries:
                if no_primary_since is None:
                    no_primary_since = now
                total_no_primary += dt
                longest_no_primary = max(longest_no_primary, now - no_primary_since)
            else:
                no_primary_since = None
            if healthy < quorum:
                quorum_lost_s += dt
            whole = len(primaries) == 1 and healthy == len(cfg.zones) and has_leader
            if clock.reverted.is_set() and whole:
                settled_since = settled_since or now
                if now - settled_since >= 1.0:
                    break
            else:
                settled_since = None
            if clock.stop.is_set() or (clock.reverted_at and now > clock.reverted_at + 120):
                break
            if not clock.wait_until(now + SAMPLE_EVERY):
                break
        final_primaries, final_healthy, _ = self._sample(cfg)
        measured = {
            "samples": samples,
            "max_primaries_at_once": max_primaries,
            "primaries_seen": seen,
            "longest_without_primary_s": round(longest_no_primary, 3),
            "total_without_primary_s": round(total_no_primary, 3),
            "etcd_quorum": quorum,
            "etcd_quorum_lost_s": round(quorum_lost_s, 3),
            "etcd_without_leader_s": round(no_leader_s, 3),
            "final_primary": final_primaries[0] if len(final_primaries) == 1 else final_primaries,
            "final_etcd_healthy": final_healthy,
        }
        problems = []
        if max_primaries > 1:
            problems.append(f"split brain: {max_primaries} primaries at once "
                            f"{format_duration(split_at - t0)} after the injection")
        if quorum_lost_s > 0:
            problems.append(f"etcd lost its quorum for {format_duration(quorum_lost_s)}")
        if len(final_primaries) != 1:
            problems.append(f"{len(final_primaries)} primaries at the end")
        if within is not None and longest_no_primary > within:
            problems.append(f"no primary for {format_duration(longest_no_primary)} (> {format_duration(within)})")
        if problems:
            return CheckResult(self.kind, False, "; ".join(problems), measured,
                               [f"{samples} samples of every member's own view and every etcd member's health"])
        return CheckResult(
            self.kind, True,
            f"one primary throughout (primaries: {' -> '.join(seen) or 'none'}; longest without one "
            f"{format_duration(longest_no_primary)}); etcd kept its quorum"
            + (f" (leader election took {format_duration(no_leader_s)})" if no_leader_s else ""), measured,
            [f"{samples} samples of every member's own view and every etcd member's health"])

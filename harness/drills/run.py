"""One run of one drill: find a backup, restore it, check it, measure RTO and RPO.

    preflight (run lock, leftovers of killed drills, targets from the plan)
    -> load on the source + warm-up                 (pgbackrest driver)
    -> drill start (the simulated disaster; RTO clock starts)
         find-backup -> prepare -> restore -> start -> verify      (seed 004's DR steps)
       RTO = drill start -> restored service answering with every check passed
       RPO = newest acknowledged write on the source at the chosen point
             - newest write present in the restored copy
    -> teardown (always: success, failure, exceptions, Ctrl-C, SIGTERM)
    -> the source's SLOs over the drill, verdict, journal.json + report.html + summary.md

Drivers: ``pgbackrest`` restores the lab's (or any) pgBackRest repository into a scratch
PostgreSQL on loopback with archiving off; ``command`` runs the team's own commands with
a time limit and checks the result through database URLs.
"""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from harness.drills import dbclient
from harness.drills.backups import Choice, Repository, choose, list_backups
from harness.drills.loader import parse_point
from harness.drills.model import Drill, DrillTarget
from harness.drills.scratch import DrillStepFailed, Scratch, ScratchPostgres, cleanup_leftovers, kill_tree
from harness.errors import EnvironmentNotReady, HarnessError, InvalidInput
from harness.quantities import Objective, format_duration, render_value

Progress = Callable[..., None]

STEP_LABELS = {
    "find-backup": "find the backup",
    "prepare": "prepare the environment",
    "restore": "restore",
    "start": "start the database and the application",
    "verify": "verify (integrity checks, application smoke test)",
    "teardown": "tear down the scratch environment",
}
#: rows whose timestamp is this close to the restore point may be in flight (timestamp
#: taken at the start of their transaction, committed a moment later): the as-of
#: comparison stops this much before the point
SETTLE = 2.0
PLAN_SLI = {"availability": "availability", "error-ratio": "error_ratio", "latency-p95": "latency_p95",
            "latency-p99": "latency_p99"}
EXIT = {"passed": 0, "failed": 1, "invalid": 2, "not-ready": 3, "interrupted": 130}


@dataclass
class DrillStep:
    name: str
    start: float
    end: float | None = None
    ok: bool | None = None
    detail: str = ""

    @property
    def seconds(self) -> float | None:
        return None if self.end is None else self.end - self.start

    def to_dict(self, t0: float) -> dict[str, Any]:
        return {"name": self.name, "label": STEP_LABELS.get(self.name, self.name), "start": self.start,
                "end": self.end, "offset": self.start - t0, "seconds": self.seconds, "ok": self.ok,
                "detail": self.detail}


@dataclass
class CheckOutcome:
    name: str
    kind: str  # table | invariant | read-write | smoke | point-in-time | rto | rpo | source-slo | backup
    passed: bool
    detail: str
    observed: Any = None
    expected: Any = None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class DrillResult:
    run_id: str
    status: str  # passed | failed | not-ready | interrupted
    reasons: list[str]
    journal: dict[str, Any]
    journal_path: str | None = None
    report_path: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def exit_code(self) -> int:
        return EXIT.get(self.status, 1)


class _Interrupted(BaseException):
    pass


class DrillRun:
    def __init__(self, drill: Drill, *, lab_dir: str | None = None, report_dir: str | Path = "reports",
                 progress: Progress | None = None, random_backup: bool = False, window: float | None = None,
                 at: str | None = None, rto: float | None = None, rpo: float | None = None,
                 lock_wait: float = 0.0, seed: int | None = None, env: dict[str, str] | None = None):
        self.drill = drill
        self.lab_dir = lab_dir
        self.report_dir = Path(report_dir)
        self.progress = progress or (lambda event, **data: None)
        self.random_backup = random_backup
        self.window = window
        self.at = at
        self.rto_override = rto
        self.rpo_override = rpo
        self.lock_wait = lock_wait
        self.seed = seed if seed is not None else drill.backup.seed
        self.env = dict(env or {})
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        self.run_id = f"{stamp}-drill-{drill.name}"
        self.steps: list[DrillStep] = []
        self.checks: list[CheckOutcome] = []
        self.events: list[dict[str, Any]] = []
        self.reasons: list[str] = []
        self.status = "passed"
        self.interrupt_requested = False  # set by the signal handler before it raises
        self._tearing_down = False
        self.t0 = 0.0
        self.verified_at: float | None = None
        self.choice: Choice | None = None
        self.rpo: dict[str, Any] = {}
        self.pitr: dict[str, Any] = {}
        self.cfg = None
        self.load = None
        self.scratch: Scratch | None = None
        self.services: list[subprocess.Popen] = []
        self.restore_command = ""
        self.left: list[str] = []
        self.rto_target: DrillTarget | None = None
        self.rpo_target: DrillTarget | None = None
        self.source_slos: dict[str, Objective] = {}
        self.source_slo_source = ""
        self.plan_file = ""
        self.load_series: list[dict[str, Any]] = []
        self.timings: dict[str, float] = {}  # parts of steps (database ready, service start)
        self.workdir = ""
        self.rto: dict[str, Any] = {}

    # -- bookkeeping -----------------------------------------------------------------
    def event(self, kind: str, text: str, **data: Any) -> None:
        self.events.append({"t": time.time(), "kind": kind, "text": text, **data})
        self.progress("event", kind=kind, text=text, run=self)

    def fail(self, reason: str) -> None:
        if self.status == "passed":
            self.status = "failed"
        if reason not in self.reasons:
            self.reasons.append(reason)

    def step(self, name: str) -> "_StepCtx":
        return _StepCtx(self, name)

    def check(self, outcome: CheckOutcome) -> CheckOutcome:
        self.honour_interrupt()
        self.checks.append(outcome)
        self.event("check", f"{'ok' if outcome.passed else 'FAILED'}: {outcome.name}: {outcome.detail}",
                   passed=outcome.passed)
        if not outcome.passed:
            self.fail(f"{outcome.name}: {outcome.detail}")
        return outcome

    # -- lifecycle ----------------------------------------------------------------------
    def execute(self) -> DrillResult:
        from harness.engine.lock import RunLock

        started = time.time()
        lock = RunLock()
        previous = None
        previous_int = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGTERM)
            previous_int = signal.getsignal(signal.SIGINT)

            def on_term(signum, frame):  # SIGTERM: same as Ctrl-C, everything is torn down
                # Recorded before raising: CPython drops the KeyboardInterrupt when the
                # signal lands in a finaliser ("Exception ignored in ..."); every step
                # and check then raises it again (a drill once passed a Ctrl-C by).
                self.interrupt_requested = True
                raise KeyboardInterrupt

            signal.signal(signal.SIGTERM, on_term)
            signal.signal(signal.SIGINT, on_term)
        try:
            try:
                self._preflight(lock)
                self.scratch = Scratch(self.run_id)
                if self.drill.driver == "pgbackrest":
                    self._run_pgbackrest()
                else:
                    self._run_command()
            except KeyboardInterrupt:
                self.status = "interrupted"
                self.reasons.insert(0, "interrupted (Ctrl-C or SIGTERM); the scratch environment was removed")
                self.event("interrupted", "interrupted: tearing down")
            except DrillStepFailed as exc:
                self.fail(str(exc))
            except EnvironmentNotReady as exc:
                if self.t0:
                    self.fail(str(exc))  # mid-drill: the drill failed with this reason
                else:
                    self.status = "not-ready"
                    self.reasons.append(str(exc))
            except dbclient.DbError as exc:
                self.fail(f"database: {exc}")
            except InvalidInput:
                raise
            except Exception as exc:  # noqa: BLE001 - a drill ends with a verdict, never a traceback
                import traceback

                self.fail(f"unexpected error: {type(exc).__name__}: {exc}")
                self.event("error", traceback.format_exc(limit=8))
            finally:
                self._tearing_down = True
                if self.interrupt_requested and self.status != "interrupted":
                    # a Ctrl-C Python lost after the last step: still an interrupted drill
                    self.status = "interrupted"
                    self.reasons.insert(0, "interrupted (Ctrl-C or SIGTERM); the scratch environment was removed")
                    self.event("interrupted", "interrupted: tearing down")
                self._teardown()
                if self.load is not None:
                    self._judge_source()
                    try:
                        lo = (self.load.started_at or self.t0 or time.time())
                        self.load_series = self.load.series.per_second(lo, time.time())
                    except Exception:  # noqa: BLE001 - the chart is optional
                        self.load_series = []
                    self.load.stop()
                    self.load = None
                lock.release()
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            if previous_int is not None:
                signal.signal(signal.SIGINT, previous_int)
        return self._finish(started)

    def honour_interrupt(self) -> None:
        """Raise the Ctrl-C / SIGTERM Python lost, if one was received."""
        if self.interrupt_requested and self.status != "interrupted" and not self._tearing_down:
            raise KeyboardInterrupt

    def _preflight(self, lock) -> None:
        d = self.drill
        self._resolve_targets()
        lock.acquire(f"drill {d.path}", wait=self.lock_wait)
        for line in cleanup_leftovers():
            self.event("cleanup", f"removed what a killed drill left: {line}")
        if d.driver == "pgbackrest":
            self.cfg = self._lab_cfg()

    def _lab_cfg(self):
        return lab_config(self.lab_dir)

    # -- targets and plan -------------------------------------------------------------
    def _plan(self):
        from harness.plan.loader import load_plan

        path = self.drill.plan_path
        if not path:
            for base in (self.drill.path.resolve().parent, *self.drill.path.resolve().parents, Path.cwd()):
                if (base / "plans" / "lab.yaml").exists():
                    path = str(base / "plans" / "lab.yaml")
                    break
        if not path:
            return None
        self.plan_file = path
        return load_plan(path)

    def _resolve_targets(self) -> None:
        d = self.drill
        need_plan = "plan" in (d.rto, d.rpo) or d.source_slo == "plan"
        plan = self._plan() if need_plan else None
        policy = getattr(plan, "backup", None) if plan else None
        rel = _rel(self.plan_file)

        def target(name: str, value: Any, override: float | None) -> DrillTarget:
            from harness.drills.backups import _dur

            if override is not None:
                return DrillTarget(override, _dur(override), "command line")
            if value != "plan":
                return DrillTarget(float(value), _dur(float(value)), f"drill file {_rel(str(d.path))}")
            num = getattr(policy, name, None) if policy else None
            if num is None:
                raise EnvironmentNotReady(f"targets.{name}: plan, but the plan ({rel or 'none found'}) has no "
                                          f"backup {name}: give one in the drill file")
            return DrillTarget(float(num.value), str(getattr(num, "text", "") or format_duration(float(num.value))),
                          f"plan {rel} ({num.source})")

        self.rto_target = target("rto", d.rto, self.rto_override)
        self.rpo_target = target("rpo", d.rpo, self.rpo_override)
        if d.source_slo == "plan":
            self.source_slos = plan_objectives(plan)
            self.source_slo_source = f"plan {rel}"
        else:
            self.source_slos = dict(d.source_slo)
            self.source_slo_source = f"drill file {_rel(str(d.path))}"

    # -- load on the source -------------------------------------------------------------
    def _start_load(self) -> None:
        from harness.load.generator import LoadGenerator

        spec = self.drill.load
        if spec is None:
            return
        host = spec.host or self.cfg.load_host
        self.load = LoadGenerator(spec, host, base_dir=self.drill.path.parent)
        self.progress("phase", name="warm-up", run=self)
        self.load.start()
        self.event("load", f"{spec.users} users on {host} ({Path(spec.locustfile).name}), warm-up "
                           f"{format_duration(spec.warmup)}")
        ready = time.time() + spec.warmup
        while time.time() < ready:
            if not self.load.alive:
                raise EnvironmentNotReady("the load generator stopped during warm-up:\n"
                                          + "\n".join(self.load.stderr_tail[-10:]))
            time.sleep(0.1)

    def _judge_source(self) -> None:
        if self.load is None or not self.t0:
            return
        t1 = time.time()
        w = self.load.series.window(self.t0, t1)
        for sli, obj in self.source_slos.items():
            v = w.sli(sli)
            ok = v is not None and obj.holds(v)
            self.check(CheckOutcome(f"source {sli} {obj}", "source-slo", ok,
                                    f"observed {render_value(v, obj.unit)} over the drill's "
                                    f"{format_duration(t1 - self.t0)} ({w.requests} requests)"
                                    + ("" if ok else f"; objective {obj} ({self.source_slo_source})"),
                                    v, str(obj)))

    # -- the pgBackRest driver ----------------------------------------------------------------
    def _repo(self) -> Repository:
        d = self.drill
        lab = Repository.of_lab(self.cfg)
        return Repository(d.pgbackrest_config or lab.config, d.pgbackrest_stanza or lab.stanza)

    def _run_pgbackrest(self) -> None:
        d = self.drill
        cfg = self.cfg
        self._start_load()
        self.t0 = time.time()
        self.progress("phase", name="drill", run=self)
        self.event("start", f"drill start (RTO clock): {d.title}")
        repo = self._repo()
        recovery = d.backup.effective_recovery
        target_time = None
        # 1. find the backup
        with self.step("find-backup") as st:
            if d.backup.pick == "time" or self.at:
                target_time = parse_point(self.at or d.backup.time, self.t0)
                recovery = "time"
            backups = list_backups(repo)
            pick = "time" if recovery == "time" else ("random" if self.random_backup else d.backup.pick)
            window = self.window if self.window is not None else d.backup.window
            rng = random.Random(self.seed) if self.seed is not None else None
            self.choice = choose(backups, pick, window=window, type_=d.backup.type, at=target_time, now=self.t0,
                                 rng=rng)
            if self.choice.backup is None:
                st.detail = self.choice.reason
                raise DrillStepFailed(f"no backup to restore: {self.choice.reason} "
                                      f"(repository {repo.config}, stanza {repo.stanza})")
            b = self.choice.backup
            st.detail = (f"{b.label} ({b.type}, finished {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(b.stop))}, "
                         f"{format_duration(self.t0 - b.stop)} before the drill): {self.choice.reason}")
            if recovery == "time":
                self._archive_up_to(target_time)
            elif d.flush_wal:
                self._archive_up_to(self.t0)
        # 2. prepare a scratch environment
        with self.step("prepare") as st:
            root = cfg.path("drills", self.run_id)
            port = self.scratch.port(cfg.port_base + 500, cfg.port_base + 599)
            pg = ScratchPostgres(self.scratch, root, port)
            pg.prepare()
            st.detail = f"data directory {pg.data_dir}, 127.0.0.1:{port}, archiving off"
        # 3. restore
        with self.step("restore") as st:
            remaining = max(10.0, d.timeout - (time.time() - self.t0))
            self.restore_command = pg.restore(repo, b.label, recovery, target_time, remaining)
            st.detail = self.restore_command
        # 4. start the restored database and the application
        with self.step("start") as st:
            pg.start(timeout=max(10.0, d.timeout - (time.time() - self.t0)))
            self.timings["database_ready"] = time.time() - st.start
            restore_point = self._restore_point(pg, recovery, target_time, b)
            st.detail = f"PostgreSQL on 127.0.0.1:{port} accepts writes (promoted)"
            smoke_url = None
            if d.checks.smoke:
                t_service = time.time()
                smoke_url = self._start_service(pg)
                self.timings["service_start"] = time.time() - t_service
                st.detail += f"; sample service replica at {smoke_url}"
        # 5. verify
        with self.step("verify") as st:
            restored = dbclient.connect(pg.url())
            try:
                source = dbclient.connect(self._source_dsn())
            except dbclient.DbError as exc:
                restored.close()
                raise dbclient.DbError(f"the source database (the lab's primary through HAProxy): {exc}") from None
            try:
                self._sabotage(restored)
                point = target_time if recovery == "time" else self.t0
                self._measure_rpo(source, restored, point, recovery)
                self._table_checks(source, restored, restore_point, recovery, target_time)
                self._invariants(restored)
                if d.checks.read_write:
                    self._read_write(restored)
                if smoke_url:
                    self._smoke(smoke_url, restored)
            finally:
                restored.close()
                source.close()
            st.ok = all(c.passed for c in self.checks)
            st.detail = f"{sum(c.passed for c in self.checks)}/{len(self.checks)} checks passed"
        self.verified_at = time.time()

    def _source_dsn(self) -> str:
        from harness.lab.db import dsn

        return dsn(self.cfg, via="haproxy")

    def _archive_up_to(self, point: float, timeout: float = 60.0) -> None:
        """Point-in-time restores need WAL up to the point in the repository: switch the
        WAL segment on the source and wait until it is archived past the point."""
        import psycopg

        from harness.lab.db import dsn

        conn_s = dsn(self.cfg, dbname="postgres")
        wait_until = max(point, time.time() - 0.5)
        deadline = time.time() + timeout
        with psycopg.connect(conn_s, autocommit=True) as conn:
            if time.time() < point:
                time.sleep(point - time.time())
            conn.execute("SELECT pg_switch_wal()")
            while time.time() < deadline:
                row = conn.execute("SELECT extract(epoch FROM last_archived_time)::float8, last_archived_wal, "
                                   "extract(epoch FROM last_failed_time)::float8 FROM pg_stat_archiver").fetchone()
                if row[0] and row[0] >= wait_until:
                    self.event("wal", f"WAL archived up to {row[1]} (past the restore point)")
                    return
                time.sleep(0.2)
        raise DrillStepFailed(f"WAL up to the point in time was not archived within {timeout:.0f}s")

    def _restore_point(self, pg: ScratchPostgres, recovery: str, target_time: float | None, b) -> float:
        """When the restored copy ends: PostgreSQL's "last completed transaction was at log
        time ..." after its recovery (the point in time, the backup's end otherwise)."""
        point = None
        try:
            for line in pg.log.read_text(errors="replace").splitlines():
                m = re.search(r"last completed transaction was at log time (.+)$", line)
                if m:
                    point = datetime.fromisoformat(_pg_ts(m.group(1).strip())).timestamp()
        except (OSError, ValueError):
            point = None
        if point is None:
            point = target_time if recovery == "time" else b.stop
            self.event("restore-point", "no transaction replayed; restore point = "
                       + ("the point in time" if recovery == "time" else "the backup's end"))
        self.pitr["restore_point"] = point
        return point

    def _start_service(self, pg: ScratchPostgres) -> str:
        port = self.scratch.port(self.cfg.port_base + 500, self.cfg.port_base + 599)
        argv = [sys.executable, "-m", "harness.lab.service", "--listen", f"127.0.0.1:{port}",
                "--name", "drill-smoke", "--db", pg.dsn(), "--db-pool", "2"]
        log = open(self.scratch_dir_file("service.log"), "ab")
        try:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        self.scratch.add_pid(proc.pid)
        self.services.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 30
        while time.time() < deadline:
            if proc.poll() is not None:
                raise DrillStepFailed(f"the sample service exited (code {proc.returncode}) against the restored "
                                      f"database; log {self.scratch_dir_file('service.log')}")
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return url
            except OSError:
                time.sleep(0.05)
        raise DrillStepFailed("the sample service did not answer /healthz within 30s")

    def scratch_dir_file(self, name: str) -> Path:
        if self.cfg is not None:
            return self.cfg.path("drills", self.run_id, name)
        return Path(self.workdir) / name

    # -- checks ---------------------------------------------------------------------------
    def _sabotage(self, restored: dbclient.Db) -> None:
        for sql in self.drill.sabotage:
            restored.execute(sql)
            self.event("sabotage", f"ran on the restored copy (the checks must catch it): {sql}")

    def _measure_rpo(self, source: dbclient.Db, restored: dbclient.Db, point: float, recovery: str) -> None:
        d = self.drill
        table, col = d.rpo_table, d.rpo_column
        newest_ack, how = None, ""
        acks = self._ack_times(point) if self.cfg is not None else []
        if acks:
            newest_ack, how = max(acks), f"acknowledged-writes log of the sample service ({len(acks)} acks)"
        else:
            try:
                newest_ack = source.newest(table, col, before=point)
                how = f"newest {table}.{col} on the source"
            except dbclient.DbError as exc:
                how = f"source unreadable: {exc}"
        try:
            newest_restored = restored.newest(table, col) if restored.table_exists(table) else None
        except dbclient.DbError:
            newest_restored = None
        tgt = self.rpo_target
        if newest_ack is None:
            rpo, detail = 0.0, f"no write on the source before the point ({how}): nothing could be lost"
        elif newest_restored is None:
            rpo = point - (min(acks) if acks else newest_ack)
            detail = (f"the restored copy holds none of the acknowledged writes in {table}; newest acknowledged "
                      f"at the point was {_clock(newest_ack)}")
        else:
            rpo = max(0.0, newest_ack - newest_restored)
            detail = (f"newest acknowledged write at the point {_clock(newest_ack)}, newest in the restored copy "
                      f"{_clock(newest_restored)}")
        self.rpo = {"seconds": rpo, "point": point, "newest_acknowledged": newest_ack,
                    "newest_restored": newest_restored, "how": how, "table": table, "column": col,
                    "target": tgt.seconds, "target_text": tgt.text, "target_source": tgt.source,
                    "passed": tgt.seconds is None or rpo <= tgt.seconds, "recovery": recovery}
        ok = self.rpo["passed"]
        self.check(CheckOutcome(f"RPO {format_duration(rpo)} vs target {tgt.text}", "rpo", ok,
                                detail + ("" if ok else f"; RPO {format_duration(rpo)} exceeds the target "
                                                        f"{tgt.text} ({tgt.source})"), rpo, tgt.seconds))

    def _ack_times(self, point: float) -> list[float]:
        out: list[float] = []
        for f in sorted(self.cfg.path("acks").glob("*.log")):
            try:
                with open(f, errors="replace") as fh:
                    for line in fh:
                        parts = line.split()
                        if len(parts) == 2:
                            try:
                                t = float(parts[1])
                            except ValueError:
                                continue
                            if t <= point:
                                out.append(t)
            except OSError:
                continue
        return out

    def _table_checks(self, source: dbclient.Db, restored: dbclient.Db, restore_point: float, recovery: str,
                      target_time: float | None) -> None:
        cutoff = restore_point - SETTLE
        for t in self.drill.checks.tables:
            name = f"table {t.table}"
            try:
                if not restored.table_exists(t.table):
                    self.check(CheckOutcome(name, "table", False, "missing in the restored copy"))
                    continue
                src = source.table_stats(t.table, t.as_of, cutoff if t.as_of else None)
                dst = restored.table_stats(t.table, t.as_of, cutoff if t.as_of else None)
            except dbclient.DbError as exc:
                self.check(CheckOutcome(name, "table", False, f"cannot read: {exc}"))
                continue
            scope = (f"rows with {t.as_of} <= {_clock(cutoff)} (restore point {_clock(restore_point)} - "
                     f"{SETTLE:.0f}s)") if t.as_of else "whole table"
            ok = src == dst
            if ok:
                detail = f"{dst[0]} rows, checksum {dst[1]} match the source ({scope})"
            elif src[0] != dst[0]:
                detail = f"{dst[0]} rows in the restored copy, {src[0]} on the source ({scope})"
            else:
                detail = f"same {dst[0]} rows but checksums differ ({dst[1]} vs {src[1]}; {scope})"
            self.check(CheckOutcome(name, "table", ok, detail, {"rows": dst[0], "checksum": dst[1]},
                                    {"rows": src[0], "checksum": src[1]}))
            if recovery == "time" and t.as_of and target_time is not None:
                after_src = source.count_after(t.table, t.as_of, target_time)
                after_dst = restored.count_after(t.table, t.as_of, target_time)
                before = dst[0]
                self.pitr.setdefault("tables", {})[t.table] = {
                    "target": target_time, "rows_before_restored": before, "rows_before_source": src[0],
                    "rows_after_restored": after_dst, "rows_after_source": after_src}
                self.check(CheckOutcome(f"point in time {t.table}", "point-in-time", after_dst == 0,
                                        f"{after_dst} rows after {_clock(target_time)} in the restored copy "
                                        f"(the source has {after_src} since); {before} rows before it present",
                                        after_dst, 0))

    def _invariants(self, restored: dbclient.Db) -> None:
        for inv in self.drill.checks.invariants:
            try:
                v = restored.scalar(inv.query)
                num = float(v) if v is not None and not isinstance(v, bool) else (1.0 if v else 0.0)
                ok = inv.expect.holds(num)
                detail = f"{inv.query} -> {v} (expected {inv.expect})"
            except (dbclient.DbError, TypeError, ValueError) as exc:
                ok, num, detail = False, None, f"{inv.query} failed: {exc}"
            self.check(CheckOutcome(f"invariant {inv.name}", "invariant", ok, detail, num, str(inv.expect)))

    def _read_write(self, restored: dbclient.Db) -> None:
        try:
            what = restored.read_write()
            self.check(CheckOutcome("accepts reads and writes", "read-write", True, what))
        except dbclient.DbError as exc:
            self.check(CheckOutcome("accepts reads and writes", "read-write", False, str(exc)))

    def _smoke(self, url: str, restored: dbclient.Db) -> None:
        def call(method: str, path: str) -> tuple[int, dict]:
            req = urllib.request.Request(url + path, method=method, data=b"{}" if method == "POST" else None)
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    return r.status, json.loads(r.read() or b"{}")
            except urllib.error.HTTPError as exc:
                return exc.code, {}
            except OSError as exc:
                return 0, {"error": str(exc)}

        steps = []
        ok = True
        s, body = call("GET", "/api/ping")
        steps.append(f"GET /api/ping {s}")
        ok &= s == 200
        s, body = call("GET", "/api/orders/count")
        n0 = body.get("count")
        steps.append(f"GET /api/orders/count {s} ({n0} orders)")
        ok &= s == 200
        try:
            rows = restored.scalar(f"SELECT count(*) FROM {self.drill.rpo_table}")
        except dbclient.DbError:
            rows = None
        if rows is not None and n0 is not None and rows != n0:
            ok = False
            steps.append(f"the API counts {n0} orders, the restored table has {rows}")
        s, body = call("POST", "/api/orders")
        new_id = body.get("id")
        steps.append(f"POST /api/orders {s}")
        ok &= s == 201
        s, body = call("GET", "/api/orders/count")
        steps.append(f"GET /api/orders/count {s} ({body.get('count')} orders)")
        ok &= s == 200 and n0 is not None and body.get("count") == n0 + 1
        s, body = call("GET", "/api/orders")
        seen = any(o.get("id") == new_id for o in body.get("orders") or [])
        steps.append(f"GET /api/orders {s} (the new order {'listed' if seen else 'NOT listed'} among the newest)")
        ok &= s == 200 and seen
        self.check(CheckOutcome("application smoke test", "smoke", bool(ok),
                                "sample service replica on the restored database: " + "; ".join(steps)))

    # -- the command driver -----------------------------------------------------------------
    def _run_command(self) -> None:
        import tempfile

        d = self.drill
        spec = d.command
        assert spec is not None
        self.workdir = tempfile.mkdtemp(prefix=f"drill-{d.name}-")
        self.scratch.add_dir(Path(self.workdir))
        env = {**os.environ, **self.env, "DRILL_RUN_ID": self.run_id, "DRILL_WORKDIR": self.workdir}
        for cmd in spec.cleanup:
            self.scratch.add_cleanup_command(cmd, {k: v for k, v in env.items() if k.startswith(("DRILL_", "MARIADB_"))
                                                   or k in self.env})
        self.t0 = time.time()
        self.event("start", f"drill start (RTO clock): {d.title}")
        deadline = self.t0 + spec.timeout

        def run(cmds, what: str) -> str:
            outs = []
            for cmd in cmds:
                left = deadline - time.time()
                if left <= 0:
                    raise DrillStepFailed(f"{what}: the time limit of {format_duration(spec.timeout)} ran out")
                outs.append(_shell(cmd, env, left, what))
            return "\n".join(outs)

        with self.step("find-backup") as st:
            if spec.find:
                out = _shell(spec.find, env, max(1.0, deadline - time.time()), "find the backup", fail_ok=True)
                lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
                if not lines:
                    st.detail = "command.find printed nothing"
                    raise DrillStepFailed(f"no backup at all: `{spec.find}` found none")
                env["DRILL_BACKUP"] = lines[-1]
                st.detail = f"{lines[-1]} (by `{spec.find}`)"
                self.choice = Choice(None, len(lines), st.detail)
            else:
                st.detail = "no command.find: the restore commands find their own backup"
        with self.step("prepare") as st:
            run(spec.prepare, "prepare")
            st.detail = f"work directory {self.workdir}" + (f"; {len(spec.prepare)} commands" if spec.prepare else "")
        with self.step("restore") as st:
            run(spec.restore, "restore")
            st.detail = "; ".join(spec.restore)
            self.restore_command = st.detail
        with self.step("start") as st:
            source_url = _expand(spec.source_url, env)
            restored_url = _expand(spec.restored_url, env)
            restored = _wait_db(restored_url, max(5.0, min(60.0, deadline - time.time())))
            st.detail = f"restored database answers at {_redact(restored_url)}"
        with self.step("verify") as st:
            try:
                source = dbclient.connect(source_url)
            except dbclient.DbError as exc:
                raise EnvironmentNotReady(f"the source database {_redact(source_url)}: {exc}") from None
            try:
                self._sabotage(restored)
                self._measure_rpo(source, restored, self.t0, "dump")
                # the restore point of a dump: its newest row (the dump's moment)
                point = self.rpo.get("newest_restored") or self.t0
                self._table_checks(source, restored, point, "dump", None)
                self._invariants(restored)
                if d.checks.read_write:
                    self._read_write(restored)
                if d.checks.smoke and d.checks.smoke_command:
                    try:
                        out = _shell(d.checks.smoke_command, env, max(5.0, deadline - time.time()), "smoke test")
                        self.check(CheckOutcome("application smoke test", "smoke", True,
                                                f"`{d.checks.smoke_command}` succeeded" + (f": {out.strip()[-200:]}"
                                                                                           if out.strip() else "")))
                    except DrillStepFailed as exc:
                        self.check(CheckOutcome("application smoke test", "smoke", False, str(exc)))
            finally:
                source.close()
                restored.close()
            st.ok = all(c.passed for c in self.checks)
            st.detail = f"{sum(c.passed for c in self.checks)}/{len(self.checks)} checks passed"
        self.verified_at = time.time()

    # -- teardown and verdict -----------------------------------------------------------------
    def _teardown(self) -> None:
        main = threading.current_thread() is threading.main_thread()
        prev = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None  # finish tearing down
        try:
            if self.scratch is None:
                return
            st = DrillStep("teardown", time.time())
            for p in self.services:
                kill_tree(p.pid, signal.SIGTERM, wait=5)
            self.left = self.scratch.teardown()
            st.end = time.time()
            st.ok = not self.left
            st.detail = "scratch instance, processes, ports and directories removed" if not self.left else \
                "LEFT BEHIND: " + ", ".join(self.left)
            self.steps.append(st)
            self.progress("step", step=st, run=self)
            if self.left:
                self.fail("teardown left " + ", ".join(self.left) + " (run `harness drill cleanup`)")
        finally:
            if main and prev is not None:
                signal.signal(signal.SIGINT, prev)

    def _finish(self, started: float) -> DrillResult:
        rto_s = (self.verified_at - self.t0) if (self.verified_at and self.t0) else None
        tgt = self.rto_target
        rto = {"seconds": None, "reached": False, "target": tgt.seconds if tgt else None,
               "target_text": tgt.text if tgt else "", "target_source": tgt.source if tgt else "", "passed": False}
        checks_ok = all(c.passed for c in self.checks if c.kind not in ("source-slo", "rto"))
        if rto_s is not None:
            rto.update(elapsed=rto_s)
            if checks_ok:
                rto.update(seconds=rto_s, reached=True, passed=tgt is None or tgt.seconds is None or rto_s <= tgt.seconds)
                self.checks.append(CheckOutcome(
                    f"RTO {format_duration(rto_s)} vs target {tgt.text}", "rto", rto["passed"],
                    f"drill start to restored service answering with every check passed: {format_duration(rto_s)}"
                    + ("" if rto["passed"] else f"; exceeds the target {tgt.text} ({tgt.source})"), rto_s, tgt.seconds))
                if not rto["passed"] and self.status != "interrupted":
                    self.fail(f"RTO {format_duration(rto_s)} exceeds the target {tgt.text} ({tgt.source})")
            else:
                rto["detail"] = (f"not reached: the restored copy failed its checks after "
                                 f"{format_duration(rto_s)}")
        elif self.status != "interrupted" and self.t0:
            rto["detail"] = "not reached: the drill failed before the restored service answered"
        self.rto = rto
        ended = time.time()
        journal = self._journal(started, ended)
        result = DrillResult(self.run_id, self.status, self.reasons, journal)
        self._write(result)
        return result

    def _journal(self, started: float, ended: float) -> dict[str, Any]:
        d = self.drill
        b = self.choice.backup if self.choice else None
        series = self.load_series
        return {
            "kind": "drill",
            "run_id": self.run_id,
            "drill": {"path": _rel(str(d.path)), "name": d.name, "title": d.title, "description": d.description,
                      "driver": d.driver, "pick": "random" if self.random_backup else d.backup.pick,
                      "recovery": d.backup.effective_recovery if not self.at else "time",
                      "plan": _rel(self.plan_file)},
            "status": self.status,
            "reasons": self.reasons,
            "started_at": started,
            "drill_start": self.t0 or None,
            "ended_at": ended,
            "backup": ({**b.to_dict(), "candidates": self.choice.candidates, "reason": self.choice.reason}
                       if b else ({"reason": self.choice.reason, "candidates": self.choice.candidates}
                                  if self.choice else None)),
            "restore_command": self.restore_command,
            "timings": self.timings,
            "steps": [s.to_dict(self.t0 or started) for s in self.steps],
            "rto": self.rto,
            "rpo": self.rpo or {"seconds": None, "target": self.rpo_target.seconds if self.rpo_target else None,
                                "target_text": self.rpo_target.text if self.rpo_target else "",
                                "target_source": self.rpo_target.source if self.rpo_target else "",
                                "passed": False},
            "pitr": self.pitr,
            "checks": [c.to_dict() for c in self.checks],
            "source_slo": {"source": self.source_slo_source,
                           "objectives": {k: str(v) for k, v in self.source_slos.items()}},
            "load": {"users": d.load.users if d.load else 0, "series": series},
            "left_behind": self.left,
            "events": self.events,
            "lab": self.cfg.run_dir if self.cfg is not None else None,
        }

    def _write(self, result: DrillResult) -> None:
        out = self.report_dir / self.run_id
        out.mkdir(parents=True, exist_ok=True)
        jp = out / "journal.json"
        tmp = jp.with_suffix(".tmp")
        tmp.write_text(json.dumps(result.journal, indent=1, default=str))
        os.replace(tmp, jp)
        result.journal_path = str(jp)
        try:
            from harness.report.drill import write_drill_reports

            result.report_path = str(write_drill_reports(result.journal, out))
        except Exception as exc:  # noqa: BLE001 - the journal is written; say what is missing
            self.event("report", f"could not write the report: {exc}")


class _StepCtx:
    def __init__(self, run: DrillRun, name: str):
        self.run = run
        self.step = DrillStep(name, time.time())

    def __enter__(self) -> DrillStep:
        self.run.honour_interrupt()
        self.run.progress("step-start", name=self.step.name, run=self.run)
        return self.step

    def __exit__(self, et, ev, tb) -> bool:
        st = self.step
        st.end = time.time()
        if st.ok is None:
            st.ok = et is None
        if et is not None and not st.detail:
            st.detail = str(ev)
        elif et is not None and str(ev) not in st.detail:
            st.detail += f" ({ev})"
        if et is KeyboardInterrupt:
            st.detail = "interrupted"
        self.run.steps.append(st)
        self.run.progress("step", step=st, run=self.run)
        return False


# -- helpers ----------------------------------------------------------------------------
def plan_objectives(plan) -> dict[str, Objective]:
    """The plan's SLOs as objectives on the load generator's SLIs (availability,
    error_ratio, latency_pNN), whichever shape the plan model gives them."""
    out: dict[str, Objective] = {}
    for slo in getattr(plan, "slos", None) or []:
        sli = PLAN_SLI.get(slo.sli, str(slo.sli).replace("-", "_"))
        obj = slo.objective
        if isinstance(obj, Objective):
            out[sli] = obj
            continue
        try:
            ratio = float(obj)
        except (TypeError, ValueError):
            continue
        threshold = getattr(slo, "threshold", None)
        if sli == "availability":
            out[sli] = Objective(">=", ratio, "ratio", f">= {ratio * 100:g}%")
        elif sli == "error_ratio":
            out[sli] = Objective("<=", 1 - ratio, "ratio", f"<= {(1 - ratio) * 100:.3g}%")
        elif sli.startswith("latency_p") and threshold is not None:
            v = float(getattr(threshold, "value", threshold))
            out[sli] = Objective("<=", v, "seconds", f"<= {getattr(threshold, 'text', '') or format_duration(v)}")
    return out


def lab_config(lab_dir: str | None = None):
    """The lab to drill on: ``lab_dir``, $HARNESS_LAB_DIR, the default lab, or the only
    lab under the state root."""
    from harness.lab.config import LabConfig, default_run_dir, state_root

    run_dir = lab_dir or os.environ.get("HARNESS_LAB_DIR")
    if not run_dir:
        if (default_run_dir() / "lab.json").exists():
            run_dir = str(default_run_dir())
        else:
            labs = sorted(state_root().glob("lab-*/lab.json"))
            if len(labs) == 1:
                run_dir = str(labs[0].parent)
            elif labs:
                raise EnvironmentNotReady("several labs exist here (" + ", ".join(str(p.parent) for p in labs)
                                          + "): name one with --lab-dir or HARNESS_LAB_DIR")
            else:
                raise EnvironmentNotReady("no lab is running: start one with `harness lab up`")
    return LabConfig.load(run_dir)


def _shell(cmd: str, env: dict[str, str], timeout: float, what: str, fail_ok: bool = False) -> str:
    """``bash -o pipefail -c cmd`` in its own session; the whole group is killed on time-out."""
    proc = subprocess.Popen(["bash", "-o", "pipefail", "-c", cmd], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise DrillStepFailed(f"{what}: `{cmd}` did not finish within {format_duration(timeout)} (killed)") from None
    except BaseException:
        _kill_group(proc)
        raise
    if proc.returncode != 0 and not fail_ok:
        tail = (err or out).strip().splitlines()[-3:]
        raise DrillStepFailed(f"{what}: `{cmd}` exited {proc.returncode}" + (f": {' | '.join(tail)}" if tail else ""))
    return out if proc.returncode == 0 else ""


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(text: str, env: dict[str, str]) -> str:
    def sub(m):
        if m.group(1) in env:
            return env[m.group(1)]
        if m.group(2) is not None:
            return m.group(2)
        raise EnvironmentNotReady(f"${{{m.group(1)}}} is not set (the drill file uses it in {text!r})")

    return _VAR.sub(sub, text)


def _redact(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def _wait_db(url: str, timeout: float) -> dbclient.Db:
    deadline = time.time() + timeout
    last = ""
    while time.time() < deadline:
        try:
            return dbclient.connect(url)
        except dbclient.DbError as exc:
            last = str(exc)
            time.sleep(0.2)
    raise DrillStepFailed(f"the restored database {_redact(url)} did not answer within {timeout:.0f}s: {last}")


def _pg_ts(text: str) -> str:
    """'2026-12-02 02:03:47.34136+00' -> ISO 8601 Python parses."""
    text = text.strip()
    m = re.match(r"^(.*?)([+-]\d\d)(:?\d\d)?$", text)
    if m and not m.group(3):
        text = m.group(1) + m.group(2) + ":00"
    return text.replace(" ", "T", 1)


def _clock(t: float | None) -> str:
    if t is None:
        return "—"
    return datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")[:-3]


def _rel(path: str) -> str:
    if not path:
        return ""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


__all__ = ["DrillRun", "DrillResult", "HarnessError"]

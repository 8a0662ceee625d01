#!/usr/bin/env python3
"""A restore drill's RTO against a bare `pgbackrest restore` of the same backup (issue 13).

Goal: the harness's RTO is within 10 % of (bare restore + the declared checks).

Per round, under the same Locust load on the source (the drill's own load spec):

  bare     `pgbackrest restore --set=<label> --archive-mode=off` into a fresh directory,
           `postgres` started on loopback, polled every 50 ms until it accepts writes
           (promoted): nothing of the harness but a stopwatch
  drill    `drills/lab-latest.yaml` run by the harness (find the backup, prepare,
           restore, start the database and one sample-service replica, verify)
  checks   what the drill file declares, as the drill measured it: the verify step plus
           the sample-service start-up for the smoke test

ratio = drill RTO / (bare + checks); printed per round with the median. "own" is the
harness's own time inside the drill's RTO (everything but pgbackrest, PostgreSQL's
start-up and the declared checks), which the noise between two restores does not
blur. The two restores are
measured in the same run, alternating, because throughput here varies up to 2x between
identical runs (lab-facts.md).

    .venv/bin/python benchmarks/drill_overhead.py --lab-dir /var/lib/resilience-harness/lab-rh [--trials 3]
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, bench_lab, parser  # noqa: E402

PG_BIN = "/usr/lib/postgresql/15/bin"
AS_PG = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]


def bare_restore(cfg, repo, label: str, port: int) -> dict[str, float]:
    """pgbackrest restore + postgres start until it accepts writes; returns the timings."""
    root = Path(tempfile.mkdtemp(prefix="bare-restore-", dir=str(cfg.path())))
    sock = Path(tempfile.mkdtemp(prefix=f"bare-{port}-", dir="/tmp"))
    data = root / "data"
    for p in (root, sock):
        shutil.chown(p, "postgres", "postgres")
    proc = None
    try:
        t0 = time.monotonic()
        subprocess.run([*AS_PG, "pgbackrest", f"--config={repo.config}", f"--stanza={repo.stanza}",
                        f"--pg1-path={data}", "--archive-mode=off", f"--set={label}", "--log-level-console=warn",
                        "restore"], check=True, capture_output=True, cwd="/")
        t_restore = time.monotonic() - t0
        proc = subprocess.Popen([*AS_PG, f"{PG_BIN}/postgres", "-D", str(data), "-c", f"port={port}",
                                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={sock}",
                                 "-c", f"hba_file={data}/pg_hba.conf", "-c", f"ident_file={data}/pg_ident.conf",
                                 "-c", "archive_mode=off", "-c", "synchronous_standby_names=",
                                 "-c", "logging_collector=off"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        import psycopg

        while True:
            try:
                with psycopg.connect(f"host={sock} port={port} dbname=postgres user=postgres connect_timeout=2",
                                     autocommit=True) as conn:
                    if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        break
            except psycopg.Error:
                pass
            if time.monotonic() - t0 > 300:
                raise RuntimeError("bare restore: postgres did not accept writes within 300 s")
            time.sleep(0.05)
        total = time.monotonic() - t0
        return {"restore": t_restore, "start": total - t_restore, "total": total}
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(sock, ignore_errors=True)


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(trials=3)
    p.add_argument("--drill", default=str(ROOT / "drills" / "lab-latest.yaml"))
    args = p.parse_args()
    from harness.drills.backups import Repository, choose, list_backups
    from harness.drills.loader import load_drill
    from harness.drills.run import DrillRun
    from harness.load.generator import LoadGenerator

    lab_dir = args.lab_dir or os.environ.get("HARNESS_LAB_DIR")
    with bench_lab(lab_dir, with_db=True) as lab:
        cfg = lab.cfg
        drill = load_drill(args.drill)
        repo = Repository.of_lab(cfg)
        label = choose(list_backups(repo), "latest").backup.label
        reports = Path(tempfile.mkdtemp(prefix="drill-bench-reports-"))
        rows = []
        print(f"backup {label}; load {drill.load.users} users on {cfg.load_host}; {args.trials} rounds")
        print(f"{'round':>5} {'bare restore':>12} {'bare start':>10} {'bare':>7} {'checks':>7} "
              f"{'drill RTO':>9} {'ratio':>6} {'own':>6}   drill steps")
        own_all = []

        def bare_round():
            load = LoadGenerator(drill.load, cfg.load_host)
            load.start()
            try:
                time.sleep(drill.load.warmup)
                return bare_restore(cfg, repo, label, cfg.port_base + 599)
            finally:
                load.stop()

        for i in range(args.trials):
            # alternate which goes first, so a drift of the machine's speed hits both alike
            bare = bare_round() if i % 2 == 0 else None
            r = DrillRun(drill, lab_dir=cfg.run_dir, report_dir=reports, lock_wait=600).execute()
            if bare is None:
                bare = bare_round()
            j = r.journal
            if r.status != "passed" or (j.get("backup") or {}).get("label") != label:
                print(f"round {i + 1}: drill {r.status} on {(j.get('backup') or {}).get('label')}: {r.reasons}")
                return 1
            steps = {s["name"]: s["seconds"] for s in j["steps"]}
            checks = steps["verify"] + j["timings"].get("service_start", 0.0)
            rto = j["rto"]["seconds"]
            ratio = rto / (bare["total"] + checks)
            rows.append(ratio)
            # the harness's own time inside this very RTO: all but pgbackrest, PostgreSQL's
            # start-up and the declared checks (finding the backup, preparing, polling)
            own = rto - steps["restore"] - j["timings"]["database_ready"] - checks
            own_all.append(own / rto)
            print(f"{i + 1:>5} {bare['restore']:>11.2f}s {bare['start']:>9.2f}s {bare['total']:>6.2f}s "
                  f"{checks:>6.2f}s {rto:>8.2f}s {ratio:>6.3f} {own:>5.2f}s   "
                  + " ".join(f"{k}={v:.2f}" for k, v in steps.items() if k != "teardown"))
        med = statistics.median(rows)
        print(f"\nmedian ratio drill RTO / (bare restore + declared checks) = {med:.3f} "
              f"(goal <= 1.10: {'met' if med <= 1.10 else 'NOT met'}); spread {min(rows):.3f}-{max(rows):.3f}")
        print(f"the harness's own share of its RTO (find the backup, prepare, polling): median "
              f"{statistics.median(own_all) * 100:.1f} %")
        shutil.rmtree(reports, ignore_errors=True)
        return 0


if __name__ == "__main__":
    sys.exit(main())

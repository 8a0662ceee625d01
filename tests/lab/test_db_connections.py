"""Seed 002's "DB connections > 80 % of max" alert on the lab: experiments/db-connections.yaml
makes it fire (pytest collects the file and it passes on the healthy lab); here the
monitoring is broken on purpose and the same experiment must fail, and the fault's held
connections are gone after its revert, also when the revert runs in another process."""
from __future__ import annotations

import threading
import time

import psycopg
import pytest

from harness.engine.journal import pending
from harness.errors import EnvironmentNotReady

from harness.lab import db
from harness.lab.db_components import PostgresExporter
from harness.targets.lab.faults.db_connections import APP_NAME, LabDbConnections

from .conftest import ROOT, wait_healthy


def _held(cfg) -> int:
    with psycopg.connect(db.dsn(cfg, db.zone_of(db.primary(cfg)), dbname="postgres"), autocommit=True,
                         connect_timeout=3) as conn:
        (n,) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (APP_NAME,)).fetchone()
    return int(n)


def test_a_run_is_refused_while_the_exporter_is_down(lab, run_experiment):
    exporter = PostgresExporter(lab.cfg)
    exporter.stop()
    try:
        with pytest.raises(EnvironmentNotReady, match="postgres-exporter-a .*not answering"):
            run_experiment(ROOT / "experiments/db-connections.yaml")
    finally:
        exporter.start()
    assert not wait_healthy(lab, 60)


def test_the_connections_alert_cannot_fire_when_the_exporter_dies_mid_fault_and_the_run_fails(lab, run_experiment):
    exporter = PostgresExporter(lab.cfg)
    stopped = threading.Event()

    def monitoring_gap():
        # Once the fault is in, nothing reads pg_stat_activity any more.
        deadline = time.time() + 120
        while time.time() < deadline and not any(e.injected_at for e in pending()):
            time.sleep(0.1)
        exporter.stop()
        stopped.set()

    t = threading.Thread(target=monitoring_gap, daemon=True)
    t.start()
    try:
        result = run_experiment(ROOT / "experiments/db-connections.yaml")
    finally:
        t.join(130)
        exporter.start()
    assert stopped.is_set()
    assert not wait_healthy(lab, 60)
    assert result.verdict.status == "failed", result.verdict.reasons
    fires = next(c for c in result.checks if c.kind == "alert-fires")
    assert not fires.passed and "DatabaseConnectionsHigh did not fire" in fires.summary, fires.summary
    assert any("DatabaseConnectionsHigh" in r for r in result.verdict.reasons), result.verdict.reasons
    assert _held(lab.cfg) == 0


def test_the_held_connections_fill_the_member_and_a_revert_from_a_new_process_frees_them(target):
    cfg = target.cfg
    fault = LabDbConnections(target, {"fill": "85%"})
    state = fault.prepare()
    try:
        fault.inject(state)
        assert state["opened"] > 0 and _held(cfg) == state["opened"]
        assert state["in_use_before"] + state["opened"] >= state["wanted_in_use"] - 1
        # harness cleanup after a crash: a new fault object, only the journaled state
        # (this process still holds the connections, as a hung harness would).
        LabDbConnections(target, {"fill": "85%"}).revert(dict(state))
        assert _held(cfg) == 0
        assert LabDbConnections(target, {}).verify_reverted(state) == []
    finally:
        fault.revert(state)
    assert _held(cfg) == 0

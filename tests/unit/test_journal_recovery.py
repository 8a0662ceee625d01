"""Recovery of journaled faults whose target is gone, and `cleanup --forget`.

A pending fault must never be silently dropped while its target may still exist
(that is how faults stay injected), and a fault whose target certainly died with it
must not block every later run's preflight."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.engine import journal
from harness.lab.config import LabConfig


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


def _journal(run_id: str, target: dict, kind: str = "pod-kill", injected: bool = True,
             params: dict | None = None, fault_state: dict | None = None) -> str:
    fault_id = f"f-{run_id}"
    lines = [{"event": "prepared", "id": fault_id, "kind": kind, "params": params or {"selector": {"app": "api"}},
              "target": target, "state": fault_state or {"victims": ["api-1"]},
              "description": f"{kind} on {target['kind']}"}]
    if injected:
        lines.append({"event": "injected", "id": fault_id, "at": 1.0})
    (journal.journal_dir() / f"{run_id}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return fault_id


def test_lab_that_no_longer_exists_is_recorded_not_blocking(state):
    _journal("r1", {"kind": "lab", "run_dir": str(state / "no-such-lab")})
    assert len(journal.pending()) == 1
    messages = []
    reverted, errors = journal.recover(messages.append)
    assert errors == [] and [e.fault_id for e in reverted] == ["f-r1"]
    assert journal.pending() == []
    assert any("no longer exists" in m for m in messages)


def test_lab_that_is_down_counts_as_gone(state):
    cfg = LabConfig(prefix="rhju", subnet="10.83.0", port_base=27000, run_dir=str(state / "lab-rhju"))
    cfg.save()  # a lab.json as `lab up` writes it, but nothing of that lab is running
    _journal("r2", {"kind": "lab", "run_dir": cfg.run_dir})
    reverted, errors = journal.recover()
    assert errors == [] and len(reverted) == 1 and journal.pending() == []


def test_deleted_test_bed_cluster_counts_as_gone(state):
    kubeconfig = state / ".kwok" / "clusters" / "gone" / "kubeconfig.yaml"
    _journal("r3", {"kind": "kubernetes", "kubeconfig": str(kubeconfig), "context": "kwok-gone",
                    "allowed-contexts": ["kwok-gone"]})
    reverted, errors = journal.recover()
    assert errors == [] and len(reverted) == 1 and journal.pending() == []


def test_unreachable_real_cluster_stays_pending_until_forgotten(state):
    # a zone cordoned on a cluster this machine cannot reach any more
    _journal("r4", {"kind": "kubernetes", "kubeconfig": str(state / "prod" / "kubeconfig"),
                    "context": "prod", "allowed-contexts": ["prod"]},
             kind="zone-loss", params={"zone": "zone-a"},
             fault_state={"zone": "zone-a", "mode": "drain", "nodes": [{"name": "n1", "was_unschedulable": False}]})
    reverted, errors = journal.recover()
    assert reverted == [] and len(errors) == 1 and "does not exist" in errors[0]
    assert [e.fault_id for e in journal.pending()] == ["f-r4"]  # still there: nobody knows it is gone

    # the CLI says what could not be reverted and how to proceed, and exits 5
    env_cmd = [sys.executable, "-m", "harness.cli", "cleanup"]
    proc = subprocess.run(env_cmd, capture_output=True, text=True)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "cleanup --forget" in proc.stdout + proc.stderr and "Traceback" not in proc.stderr

    proc = subprocess.run(env_cmd + ["--forget"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "forgotten, not reverted" in proc.stdout
    assert journal.pending() == []
    record = [json.loads(x) for x in (journal.journal_dir()).glob("*.jsonl")]
    assert record == []  # fully settled journals are deleted

"""Lab tests share the session's lab (``harness_lab`` from the pytest plugin) and
leave it healthy: a test that breaks it on purpose must put it back."""
from __future__ import annotations

import json
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.engine.results import RunResult
from harness.engine.run import Run
from harness.experiment.loader import load_experiment
from harness.lab.config import LabConfig
from harness.targets.lab import LabTarget

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).parent / "cases"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/lab" in str(item.fspath):
            item.add_marker(pytest.mark.lab)


def sibling_config(base: LabConfig, n: int, run_dir: str | None = None, **kw) -> LabConfig:
    """The config of a second lab kept apart from the session's ``base`` lab (and from the
    siblings with another ``n``): its own prefix, subnet (third octet + n), ports (+1000 n)
    and run dir, all derived from the session lab's, so that two test sessions started with
    different --lab-prefix/--lab-port-base/--lab-subnet never collide."""
    head, third = base.subnet.rsplit(".", 1)
    prefix = (base.prefix + str(n))[:6]
    fields = dict(prefix=prefix, subnet=f"{head}.{int(third) + n}", port_base=base.port_base + 1000 * n,
                  run_dir=run_dir or str(Path(base.run_dir).parent / f"lab-{prefix}"))
    fields.update(kw)
    return LabConfig(**fields)


@pytest.fixture(scope="session")
def lab(harness_lab):
    return harness_lab


@pytest.fixture
def target(lab) -> LabTarget:
    return LabTarget.open(lab.cfg.run_dir)


def wait_healthy(lab, timeout: float = 90.0) -> list:
    deadline = time.time() + timeout
    bad = []
    while time.time() < deadline:
        bad = [h for h in lab.status() if not h.ok]
        if not bad:
            return []
        time.sleep(0.5)
    return bad


@pytest.fixture(autouse=True)
def lab_left_healthy(request):
    """Every lab test starts on, and must leave, a healthy lab."""
    if "lab" not in request.fixturenames:
        yield
        return
    lab = request.getfixturevalue("lab")
    bad = wait_healthy(lab)
    assert not bad, f"lab unhealthy before the test: {bad}"
    yield
    bad = wait_healthy(lab)
    assert not bad, f"the test left the lab unhealthy: {bad}"


@pytest.fixture
def run_experiment(target, tmp_path):
    """Run an experiment file (or YAML text) against the session lab; returns RunResult."""

    def _run(source: str | Path, **kw) -> RunResult:
        path = Path(source) if isinstance(source, Path) or "\n" not in str(source) else None
        if path is None or not path.exists():
            path = tmp_path / f"exp-{time.monotonic_ns()}.yaml"
            path.write_text(str(source).replace("@ROOT@", str(ROOT)))
        return Run(load_experiment(path), target, report_dir=tmp_path / "reports", lock_wait=300, **kw).execute()

    return _run


def orchestrator(lab, path: str, body: dict | None = None) -> dict:
    url = f"http://127.0.0.1:{lab.cfg.port('orchestrator')}{path}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


@contextmanager
def policy(lab, **changes):
    """Change the orchestrator's scaling/placement policy for one test, then restore it."""
    before = orchestrator(lab, "/state")["policy"]
    orchestrator(lab, "/policy", changes)
    try:
        yield
    finally:
        orchestrator(lab, "/policy", before)
        if "min_replicas" in changes or "max_replicas" in changes:
            orchestrator(lab, f"/scale?replicas={before['min_replicas']}", {})


def wait_replicas_ready(lab, n: int, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = orchestrator(lab, "/state")
        if st["desired"] == n and sum(1 for r in st["replicas"] if r["ready"]) == n \
                and lab.haproxy.backends_up().get("api", 0) == n:
            return
        time.sleep(0.3)
    raise AssertionError(f"replicas did not settle at {n}: {orchestrator(lab, '/state')}")

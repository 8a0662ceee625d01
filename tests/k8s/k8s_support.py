"""Helpers of the Kubernetes tests: the test bed scripts, workloads, running faults."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


REPO = Path(__file__).resolve().parents[2]
TESTBED = REPO / "tools" / "k8s-testbed"
ZONES = ("zone-a", "zone-b", "zone-c")
ZONE_LABEL = "topology.kubernetes.io/zone"
NOT_READY_LABEL = "node-not-ready.stage.kwok.x-k8s.io"


@dataclass
class Testbed:
    kubeconfig: str
    context: str
    target: Any  # KubernetesTarget allowed on this context
    core: Any
    apps: Any
    policy: Any
    autoscaling: Any
    timings: dict[str, float] = field(default_factory=dict)

    def make_target(self, **overrides):
        from harness.targets.kubernetes import KubernetesTarget

        config = {
            "kubeconfig": self.kubeconfig,
            "context": self.context,
            "allowed-contexts": [self.context],
            "namespace": "default",
        }
        config.update(overrides)
        return KubernetesTarget.from_config(config)


def restore_nodes(tb: Testbed) -> None:
    """Isolation between tests (after their own assertions): every node schedulable,
    without the not-ready label, and Ready."""
    for node in tb.core.list_node().items:
        labels = node.metadata.labels or {}
        patch: dict = {}
        if node.spec.unschedulable:
            patch["spec"] = {"unschedulable": False}
        if NOT_READY_LABEL in labels:
            patch["metadata"] = {"labels": {NOT_READY_LABEL: None}}
        if patch:
            tb.core.patch_node(node.metadata.name, patch)
    wait_for(lambda: all(_ready(n) for n in tb.core.list_node().items), 60, "all nodes Ready again")


def _ready(node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def wait_for(predicate, timeout: float, what: str, step: float = 0.2, diagnose=None):
    """Poll until ``predicate()`` is truthy. On time-out the failure carries what
    ``diagnose()`` says (the cluster's own view of why), not just "timed out"."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(step)
    extra = ""
    if diagnose is not None:
        try:
            extra = "\n" + diagnose()
        except Exception as exc:  # noqa: BLE001 - diagnostics must not hide the failure
            extra = f"\n(diagnostics failed: {exc!r})"
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r}){extra}")


def pod_metrics(tb: Testbed, ns: str) -> dict[str, list]:
    """The metrics API's view of a namespace's pods: name -> containers' usage."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=tb.kubeconfig, context=tb.context)
    try:
        raw = client.CustomObjectsApi(api).list_namespaced_custom_object("metrics.k8s.io", "v1beta1", ns, "pods")
    finally:
        api.close()
    return {i["metadata"]["name"]: [c["usage"] for c in i.get("containers", [])] for i in raw.get("items", [])}


def hpa_diagnostics(tb: Testbed, ns: str, names) -> str:
    """Why HPAs have no metric: their conditions, what the metrics API returns for the
    namespace's pods, where the pods run, and the tail of metrics-server's log."""
    import json

    lines = []
    for name in names:
        hpa = tb.autoscaling.read_namespaced_horizontal_pod_autoscaler(name, ns)
        for c in hpa.status.conditions or []:
            lines.append(f"hpa {name}: {c.type}={c.status} {c.reason}: {c.message}")
    try:
        lines.append("metrics API pods: " + json.dumps(pod_metrics(tb, ns)))
    except Exception as exc:  # noqa: BLE001
        lines.append(f"metrics API pods: error {exc}")
    for node in tb.core.list_node().items:
        lines.append(f"node {node.metadata.name} addresses "
                     f"{[(a.type, a.address) for a in node.status.addresses or []]}")
    for pod in tb.core.list_namespaced_pod(ns).items:
        lines.append(f"pod {pod.metadata.name} on {pod.spec.node_name} phase {pod.status.phase} "
                     f"started {pod.status.start_time}")
    log = Path.home() / ".kwok" / "clusters" / tb.context.removeprefix("kwok-") / "logs" / "metrics-server.log"
    if log.exists():  # its scrape errors (the rest is start-up noise about CA bundles)
        errors = [x for x in log.read_text(errors="replace").splitlines() if "scrape" in x.lower()]
        lines.append("metrics-server scrape errors (last 10):\n" + "\n".join(errors[-10:]))
    return "\n".join(lines)


# -- workloads ----------------------------------------------------------------------------------
def make_deployment(
    tb: Testbed,
    ns: str,
    name: str,
    replicas: int,
    *,
    spread: bool = True,
    pin_zone: str | None = None,
    pin_node: str | None = None,
    cpu: str = "100m",
    labels: dict[str, str] | None = None,
    wait: bool = True,
):
    from kubernetes import client

    pod_labels = {"app": name, **(labels or {})}
    constraints = None
    if spread:
        constraints = [
            client.V1TopologySpreadConstraint(
                max_skew=1,
                topology_key=ZONE_LABEL,
                when_unsatisfiable="DoNotSchedule",
                label_selector=client.V1LabelSelector(match_labels={"app": name}),
                node_taints_policy="Honor",
            )
        ]
    spec = client.V1PodSpec(
        containers=[
            client.V1Container(
                name="app",
                image="fake-image",
                resources=client.V1ResourceRequirements(requests={"cpu": cpu, "memory": "64Mi"}),
            )
        ],
        topology_spread_constraints=constraints,
        node_selector=({ZONE_LABEL: pin_zone} if pin_zone else {})
        | ({"kubernetes.io/hostname": pin_node} if pin_node else {}) or None,
        termination_grace_period_seconds=0,
    )
    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels={"app": name}),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels={"app": name}),
            template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels=pod_labels), spec=spec),
        ),
    )
    tb.apps.create_namespaced_deployment(ns, dep)
    if wait:
        wait_for(
            lambda: (tb.apps.read_namespaced_deployment(name, ns).status.available_replicas or 0) == replicas,
            60, f"deployment {name} available {replicas}/{replicas}",
        )
    return dep


def make_pdb(tb: Testbed, ns: str, name: str, app: str, min_available: int):
    from kubernetes import client

    tb.policy.create_namespaced_pod_disruption_budget(
        ns,
        client.V1PodDisruptionBudget(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PodDisruptionBudgetSpec(
                min_available=min_available,
                selector=client.V1LabelSelector(match_labels={"app": app}),
            ),
        ),
    )
    # the disruption controller must have computed the budget before drains rely on it
    wait_for(
        lambda: (tb.policy.read_namespaced_pod_disruption_budget(name, ns).status.observed_generation or 0) >= 1,
        30, f"PDB {name} observed",
    )


def make_hpa(tb: Testbed, ns: str, name: str, deployment: str, min_replicas: int, max_replicas: int, cpu_percent: int = 70):
    from kubernetes import client

    tb.autoscaling.create_namespaced_horizontal_pod_autoscaler(
        ns,
        client.V2HorizontalPodAutoscaler(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V2HorizontalPodAutoscalerSpec(
                scale_target_ref=client.V2CrossVersionObjectReference(
                    api_version="apps/v1", kind="Deployment", name=deployment
                ),
                min_replicas=min_replicas,
                max_replicas=max_replicas,
                metrics=[
                    client.V2MetricSpec(
                        type="Resource",
                        resource=client.V2ResourceMetricSource(
                            name="cpu",
                            target=client.V2MetricTarget(type="Utilization", average_utilization=cpu_percent),
                        ),
                    )
                ],
                behavior=client.V2HorizontalPodAutoscalerBehavior(
                    scale_down=client.V2HPAScalingRules(stabilization_window_seconds=0),
                    scale_up=client.V2HPAScalingRules(stabilization_window_seconds=0),
                ),
            ),
        ),
    )


def pods_of(tb: Testbed, ns: str, app: str):
    return tb.core.list_namespaced_pod(ns, label_selector=f"app={app}").items


def zone_of_node(tb: Testbed) -> dict[str, str]:
    return {n.metadata.name: (n.metadata.labels or {}).get(ZONE_LABEL) for n in tb.core.list_node().items}


# -- running a fault with checks, as the engine does ------------------------------------------------
@dataclass
class Run:
    state: dict
    results: dict
    inject_error: BaseException | None
    inject_seconds: float


def run_fault(target, fault, checks=(), *, hold: float = 0.0, check_timeout: float = 240.0,
              after_inject=None) -> Run:
    """As the engine does it (harness/engine/run.py): prepare + inject, then
    ``clock.injected_at`` and the checks start, hold, revert, ``clock.reverted``."""
    from harness.checks.base import RunClock

    clock = RunClock(started_at=time.time())
    results: dict[str, Any] = {}
    state = fault.prepare()
    error = None
    t0 = time.monotonic()
    try:
        fault.inject(state)
    except BaseException as exc:
        error = exc
    inject_seconds = time.monotonic() - t0
    clock.injected_at = time.time()
    threads = []
    for chk in checks:
        def body(chk=chk):
            try:
                results[chk.describe()] = chk.run(clock)
            except BaseException as exc:  # surfaced by the test
                results[chk.describe()] = exc
        th = threading.Thread(target=body, daemon=True)
        th.start()
        threads.append(th)
    try:
        if after_inject is not None and error is None:
            after_inject(state)
        if hold:
            time.sleep(hold)
    finally:
        fault.revert(state)
        clock.reverted_at = time.time()
        clock.reverted.set()
    for th in threads:
        th.join(check_timeout)
    clock.stop.set()
    for th in threads:
        th.join(5)
    return Run(state, results, error, inject_seconds)


def only_result(run: Run, kind: str):
    found = [r for k, r in run.results.items() if k.startswith(kind)]
    assert len(found) == 1, f"expected one {kind} result, got {run.results}"
    res = found[0]
    if isinstance(res, BaseException):
        raise res
    return res

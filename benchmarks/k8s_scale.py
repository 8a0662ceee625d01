#!/usr/bin/env python3
"""How the harness's own cost grows with cluster size: select, cordon and drain one zone.

For each size (nodes per zone x 3 zones, pods in all), a separate KWOK cluster is
started (tools/k8s-testbed/up.sh --name rh-bench --no-qps-limits), Deployments spread
over the zones are created, and the harness's zone-loss fault (mode drain) is prepared,
injected and reverted on zone-a, measuring wall time and the number of API calls the
harness made (every request through the kubernetes client is counted, including the
ones chaostoolkit-kubernetes makes).

  .venv/bin/python benchmarks/k8s_scale.py                  # 3x10/1,000 and 3x100/5,000
  .venv/bin/python benchmarks/k8s_scale.py --sizes 10:1000  # one size
  .venv/bin/python benchmarks/k8s_scale.py --json out.json

Target (issue 6): linear growth; one zone of 3x100 nodes / 5,000 pods drained in <= 10 s
of harness time. "Harness time" here is prepare + cordon + the drain until every
eviction is accepted; the time until the evicted pods are gone (the cluster's work:
KWOK deleting them) is shown apart.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TESTBED = REPO / "tools" / "k8s-testbed"
ZONE_LABEL = "topology.kubernetes.io/zone"


class ApiCallCounter:
    """Counts every HTTP request made through the kubernetes client in this process."""

    def __init__(self):
        from kubernetes.client import rest

        self._rest = rest
        self._orig = rest.RESTClientObject.request
        self.lock = threading.Lock()
        self.counts: collections.Counter = collections.Counter()
        counter = self

        def counting(self_, method, url, *args, **kwargs):
            path = url.split("?", 1)[0]
            verb = method
            if path.endswith("/eviction"):
                what = "eviction"
            elif "/nodes" in path:
                what = "nodes"
            elif "/pods" in path:
                what = "pods"
            else:
                what = "other"
            with counter.lock:
                counter.counts[f"{verb} {what}"] += 1
            return counter._orig(self_, method, url, *args, **kwargs)

        rest.RESTClientObject.request = counting

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()

    def total(self) -> int:
        return sum(self.counts.values())

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(sorted(self.counts.items()))


def cpu_pressure() -> float | None:
    """Share of time some task waited for a CPU over the last minute (Linux PSI): how
    contended the machine was while measuring (other workloads share it)."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return float(line.split("avg60=")[1].split()[0])
    except (OSError, IndexError, ValueError):
        return None


def sh(*args: str, timeout: float = 1800) -> str:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(["bash", *args], stdout=subprocess.PIPE, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed (exit {proc.returncode})")
    lines = proc.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def create_workload(apps, ns: str, pods: int, deployments: int = 10) -> None:
    from kubernetes import client

    per = pods // deployments
    for i in range(deployments):
        name = f"bench-{i}"
        replicas = per if i < deployments - 1 else pods - per * (deployments - 1)
        spec = client.V1PodSpec(
            containers=[client.V1Container(
                name="app", image="fake",
                resources=client.V1ResourceRequirements(requests={"cpu": "10m", "memory": "16Mi"}),
            )],
            topology_spread_constraints=[client.V1TopologySpreadConstraint(
                max_skew=1, topology_key=ZONE_LABEL, when_unsatisfiable="ScheduleAnyway",
                label_selector=client.V1LabelSelector(match_labels={"app": name}),
            )],
            termination_grace_period_seconds=0,
        )
        apps.create_namespaced_deployment(ns, client.V1Deployment(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1DeploymentSpec(
                replicas=replicas,
                selector=client.V1LabelSelector(match_labels={"app": name}),
                template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels={"app": name}), spec=spec),
            ),
        ))


def wait_all_ready(apps, ns: str, pods: int, timeout: float = 1800, stall: float = 180) -> float:
    t0 = time.monotonic()
    best, best_at = -1, t0
    ready = 0
    while time.monotonic() - t0 < timeout:
        ready = sum((d.status.ready_replicas or 0) for d in apps.list_namespaced_deployment(ns).items)
        if ready >= pods:
            return time.monotonic() - t0
        if ready > best:
            best, best_at = ready, time.monotonic()
        elif time.monotonic() - best_at > stall:
            raise SystemExit(f"no progress for {stall:.0f}s at {ready}/{pods} Ready pods: is every "
                             "control-plane component still running? (kwokctl logs <component>)")
        time.sleep(2)
    raise SystemExit(f"only {ready}/{pods} pods Ready after {timeout}s")


def bench_size(nodes_per_zone: int, pods: int, name: str, keep: bool) -> dict:
    from kubernetes import client, config

    from harness.targets.kubernetes import nodeops as kfaults
    from harness.targets.kubernetes import KubernetesTarget

    print(f"\n== 3 x {nodes_per_zone} nodes, {pods} pods ==", flush=True)
    t = time.monotonic()
    kubeconfig = sh(str(TESTBED / "up.sh"), "--name", name, "--nodes-per-zone", str(nodes_per_zone), "--no-qps-limits")
    up_s = time.monotonic() - t
    context = f"kwok-{name}"
    try:
        api = config.new_client_from_config(config_file=kubeconfig, context=context)
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        ns = "bench"
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        create_workload(apps, ns, pods)
        settle_s = wait_all_ready(apps, ns, pods)
        zone_a = [n.metadata.name for n in core.list_node(label_selector=f"{ZONE_LABEL}=zone-a").items]
        pods_in_a = sum(
            len(core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={n}").items) for n in zone_a
        )
        print(f"cluster up {up_s:.1f}s, {pods} pods Ready in {settle_s:.1f}s; zone-a: {len(zone_a)} nodes, {pods_in_a} pods", flush=True)

        target = KubernetesTarget.from_config({
            "kubeconfig": kubeconfig, "context": context, "allowed-contexts": [context], "namespace": ns,
        })
        target.preflight()
        fault = target.fault("zone-loss", {"zone": "zone-a", "timeout": "600s"})
        counter = COUNTER
        phases = {}

        # cordon is timed apart by wrapping the module function the fault calls
        orig_cordon = kfaults.cordon_nodes

        def timed_cordon(tgt, names, *rest):
            t0 = time.monotonic()
            before = counter.total()
            orig_cordon(tgt, names, *rest)
            phases["cordon_s"] = time.monotonic() - t0
            phases["cordon_calls"] = counter.total() - before

        kfaults.cordon_nodes = timed_cordon
        try:
            counter.reset()
            cpu0 = time.process_time()
            t0 = time.monotonic()
            state = fault.prepare()
            phases["select_s"] = time.monotonic() - t0
            phases["select_calls"] = counter.total()
            t1 = time.monotonic()
            fault.inject(state)
            inject_s = time.monotonic() - t1
            harness_cpu_s = time.process_time() - cpu0
            pressure = cpu_pressure()
        finally:
            kfaults.cordon_nodes = orig_cordon
        report = fault.last_report
        calls_inject = counter.snapshot()
        total_calls = counter.total()
        drain_calls = total_calls - phases["select_calls"] - phases["cordon_calls"]
        harness_s = phases["select_s"] + phases["cordon_s"] + report["evictions_accepted_after"]
        counter.reset()
        t2 = time.monotonic()
        fault.revert(state)
        revert_s = time.monotonic() - t2
        revert_calls = counter.total()
        # Reference: kubectl drain (client-go, one goroutine per pod) on another zone of the
        # same cluster, to tell the harness's cost from the cluster's own eviction rate.
        kubectl_rate = None
        if KUBECTL_BASELINE:
            wait_all_ready(apps, ns, pods)
            zone = "zone-c"
            zone_pods = sum(
                1 for p in core.list_pod_for_all_namespaces(field_selector="status.phase=Running").items
                if p.spec.node_name and p.spec.node_name.startswith(f"rh-{zone}-")
            )
            kubectl = str(Path(sys.executable).parent / "kubectl")
            base = [kubectl, "--kubeconfig", kubeconfig, "--context", context]
            t3 = time.monotonic()
            subprocess.run(base + ["drain", "-l", f"{ZONE_LABEL}={zone}", "--ignore-daemonsets",
                                   "--delete-emptydir-data", "--timeout=900s"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            kubectl_s = time.monotonic() - t3
            subprocess.run(base + ["uncordon", "-l", f"{ZONE_LABEL}={zone}"], check=True, stdout=subprocess.DEVNULL)
            kubectl_rate = {"zone_pods": zone_pods, "seconds": round(kubectl_s, 2),
                            "pods_per_s": round(zone_pods / kubectl_s, 1)}
            print(f"kubectl drain of {zone}: {zone_pods} pods in {kubectl_s:.1f}s", flush=True)
        result = {
            "nodes_per_zone": nodes_per_zone,
            "nodes": 3 * nodes_per_zone,
            "pods": pods,
            "zone_nodes": len(zone_a),
            "zone_pods": pods_in_a,
            "cluster_up_s": round(up_s, 1),
            "pods_ready_s": round(settle_s, 1),
            "select_s": round(phases["select_s"], 3),
            "select_calls": phases["select_calls"],
            "cordon_s": round(phases["cordon_s"], 3),
            "cordon_calls": phases["cordon_calls"],
            "evictions_accepted_s": report["evictions_accepted_after"],
            "drain_until_pods_gone_s": report["seconds"],
            "drain_calls": drain_calls,
            "drain_polls": report["polls"],
            "evicted": report["evicted"],
            "harness_s": round(harness_s, 3),
            "harness_cpu_s": round(harness_cpu_s, 3),
            "cpu_pressure_some_avg60": pressure,
            "select_cordon_drain_wall_s": round(phases["select_s"] + inject_s, 3),
            "api_calls": total_calls,
            "api_calls_by_kind": calls_inject,
            "harness_evictions_per_s": round(report["evicted"] / max(report["evictions_accepted_after"], 1e-6), 1),
            "kubectl_drain_reference": kubectl_rate,
            "revert_s": round(revert_s, 3),
            "revert_calls": revert_calls,
        }
        print(json.dumps(result, indent=1), flush=True)
        target.close()
        return result
    finally:
        if not keep:
            sh(str(TESTBED / "down.sh"), "--name", name, timeout=300)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10:1000,100:5000", help="nodes-per-zone:pods,... (default %(default)s)")
    ap.add_argument("--name", default="rh-bench", help="cluster name (default %(default)s)")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--keep", action="store_true", help="leave the last cluster running")
    ap.add_argument("--no-kubectl-baseline", action="store_true",
                    help="skip the reference kubectl drain of another zone")
    args = ap.parse_args()
    global KUBECTL_BASELINE
    KUBECTL_BASELINE = not args.no_kubectl_baseline
    sizes = [tuple(int(x) for x in s.split(":")) for s in args.sizes.split(",")]

    sh(str(TESTBED / "build.sh"), timeout=3600)
    global COUNTER
    COUNTER = ApiCallCounter()
    results = [bench_size(n, p, args.name, args.keep and i == len(sizes) - 1) for i, (n, p) in enumerate(sizes)]

    print("\nnodes  pods  zone(nodes/pods)  select  cordon  evict   harness  until-gone  api-calls  harness-cpu  cpu-pressure")
    for r in results:
        print(f"{r['nodes']:>5} {r['pods']:>5}  {r['zone_nodes']:>5}/{r['zone_pods']:<6}   "
              f"{r['select_s']:>6.2f}s {r['cordon_s']:>6.2f}s {r['evictions_accepted_s']:>6.2f}s "
              f"{r['harness_s']:>7.2f}s  {r['drain_until_pods_gone_s']:>8.2f}s  {r['api_calls']:>8}  "
              f"{r['harness_cpu_s']:>9.2f}s  {r['cpu_pressure_some_avg60']}%")
    if len(results) >= 2:
        a, b = results[0], results[-1]
        size_ratio_nodes = b["zone_nodes"] / a["zone_nodes"]
        size_ratio_pods = b["zone_pods"] / a["zone_pods"]
        print(f"\nratios {b['nodes']}/{a['nodes']} nodes: zone nodes x{size_ratio_nodes:.1f}, zone pods x{size_ratio_pods:.1f}")
        print(f"  harness time x{b['harness_s'] / a['harness_s']:.2f}, API calls x{b['api_calls'] / a['api_calls']:.2f}, "
              f"time per (node+pod) {1000 * a['harness_s'] / (a['zone_nodes'] + a['zone_pods']):.2f} ms -> "
              f"{1000 * b['harness_s'] / (b['zone_nodes'] + b['zone_pods']):.2f} ms")
        print(f"  harness CPU x{b['harness_cpu_s'] / a['harness_cpu_s']:.2f} "
              f"({1000 * b['harness_cpu_s'] / b['zone_pods']:.2f} ms per evicted pod)")
        for r in results:
            ref = r["kubectl_drain_reference"]
            if ref:
                print(f"  {r['nodes']} nodes: harness {r['harness_evictions_per_s']} evictions/s, "
                      f"kubectl drain {ref['pods_per_s']} pods/s on the same cluster")
        verdict = "MET" if b["harness_s"] <= 10 else "NOT MET"
        print(f"  target: one zone of the largest size in <= 10 s of harness time: {b['harness_s']:.2f}s -> {verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


COUNTER: ApiCallCounter
KUBECTL_BASELINE = True


if __name__ == "__main__":
    sys.exit(main())

"""The Kubernetes target: a cluster reached through a kubeconfig context.

Safety first: a context must be on the target's ``allowed-contexts`` list, or the
target refuses (:class:`harness.errors.TargetRefused`) before it makes a single API
call, so an experiment can never touch a cluster nobody meant (production) by accident.

Faults (``harness/targets/kubernetes/faults/``) go through chaostoolkit-kubernetes where it has
the action and through the kubernetes client otherwise; checks
(``harness/targets/kubernetes/checks/``) read Deployments, pods, nodes and autoscaling/v2 HPAs.
Pod and Service IPs are never contacted: only the API server.

Target file keys (see docs/kubernetes.md)::

    kind: kubernetes
    kubeconfig: ~/.kwok/clusters/rh-testbed/kubeconfig.yaml   # default: $KUBECONFIG or ~/.kube/config
    context: kwok-rh-testbed                                  # default: the kubeconfig's current-context
    allowed-contexts: [kwok-rh-testbed]                       # required: anything else is refused
    namespace: default
    prometheus-url: http://127.0.0.1:9090                     # optional
    alertmanager-url: http://127.0.0.1:9093                   # optional
    alert-receiver: http://127.0.0.1:9094                     # optional: harness's recording webhook
    plan: plans/k8s-testbed.yaml                              # optional: the plan the rules implement
    load-host: https://staging.example.com                    # optional (Locust's target)
    zone-label: topology.kubernetes.io/zone                   # optional
    zone-map: {a: zone-a, b: zone-b}                          # optional: experiment zone -> label value
    request-timeout: 30s                                      # optional
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from typing import Any, Iterator

from harness.errors import EnvironmentNotReady, InvalidInput, TargetRefused
from harness.quantities import parse_duration
from harness.targets.base import Target

ZONE_LABEL = "topology.kubernetes.io/zone"
#: KWOK marks the nodes it simulates with this annotation (value "fake").
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"

_KNOWN_KEYS = {
    "kind",
    "name",
    "source",  # the target file it was read from (relative kubeconfig paths start there)
    "kubeconfig",
    "context",
    "allowed-contexts",
    "namespace",
    "prometheus-url",
    "alertmanager-url",
    "alert-receiver",
    "plan",
    "load-host",
    "zone-label",
    "zone-map",
    "request-timeout",
}

# chaostoolkit-kubernetes builds its clients from process-wide state (the KUBECONFIG
# environment variable and the kubernetes package's default location): calls into it
# are serialised and pointed at this target's kubeconfig for their duration.
_CHAOSK8S_LOCK = threading.RLock()


def _selector_string(selector: dict[str, str] | str | None) -> str:
    if not selector:
        return ""
    if isinstance(selector, str):
        return selector
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def label_selector_from_spec(spec: dict[str, Any] | None) -> str:
    """A Deployment's ``spec.selector`` (matchLabels + matchExpressions) as a string."""
    if not spec:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((spec.get("matchLabels") or {}).items())]
    for expr in spec.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


class KubernetesTarget(Target):
    kind = "kubernetes"
    marker = "k8s"

    def __init__(
        self,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        allowed_contexts: list[str] | tuple[str, ...] = (),
        namespace: str = "default",
        prometheus_url: str | None = None,
        alertmanager_url: str | None = None,
        alert_receiver: str | None = None,
        plan: str | None = None,
        load_host: str | None = None,
        zone_label: str = ZONE_LABEL,
        zone_map: dict[str, str] | None = None,
        request_timeout: float = 30.0,
    ):
        default_kubeconfig = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or "~/.kube/config"
        self.kubeconfig = os.path.abspath(os.path.expanduser(os.path.expandvars(kubeconfig or default_kubeconfig)))
        if isinstance(allowed_contexts, str) or not all(isinstance(c, str) and c for c in allowed_contexts):
            raise InvalidInput(f"allowed-contexts must be a list of kubeconfig context names, got {allowed_contexts!r}")
        self.allowed_contexts = list(allowed_contexts)
        self._requested_context = context
        self.namespace = namespace or "default"
        self.prometheus_url = prometheus_url
        self.alertmanager_url = alertmanager_url
        self.alert_receiver = alert_receiver
        self.plan = plan
        self.load_host = load_host
        self.zone_label = zone_label or ZONE_LABEL
        self.zone_map = dict(zone_map or {})
        self.request_timeout = float(request_timeout)
        self._context: str | None = None  # resolved (and checked against the file) on use
        self._api_client = None
        self._lock = threading.RLock()
        #: (epoch, resourceVersion) taken just before each fault acted: checks that start
        #: after an injection replay the cluster's history from there (see mark_before_change)
        self.change_marks: list[tuple[float, str]] = []

    # -- construction from files and journals ---------------------------------------------
    @classmethod
    def from_config(cls, config: dict[str, Any], base_dir: str | None = None) -> "KubernetesTarget":
        """Build from a target file's mapping (YAML keys, hyphenated)."""
        unknown = set(config) - _KNOWN_KEYS
        if unknown:
            raise InvalidInput(
                f"unknown key(s) in the kubernetes target: {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(_KNOWN_KEYS - {'kind', 'name', 'source'}))})"
            )
        if config.get("kind", "kubernetes") != "kubernetes":
            raise InvalidInput(f"not a kubernetes target: kind {config.get('kind')!r}")
        allowed = config.get("allowed-contexts")
        if allowed is None:
            raise InvalidInput(
                "the kubernetes target needs 'allowed-contexts': the list of kubeconfig "
                "contexts experiments may change (anything else is refused)"
            )
        kubeconfig = config.get("kubeconfig")
        if kubeconfig and base_dir and not os.path.isabs(os.path.expanduser(os.path.expandvars(kubeconfig))):
            kubeconfig = os.path.join(base_dir, kubeconfig)
        timeout = config.get("request-timeout", 30)
        try:
            timeout_s = parse_duration(timeout)
        except ValueError as exc:
            raise InvalidInput(f"request-timeout: {exc}") from None
        plan = config.get("plan")  # relative to the target file (or else the working directory)
        if plan and base_dir and not os.path.isabs(plan) and os.path.exists(os.path.join(base_dir, plan)):
            plan = os.path.normpath(os.path.join(base_dir, plan))
        zone_map = config.get("zone-map") or {}
        if not isinstance(zone_map, dict):
            raise InvalidInput("zone-map must map experiment zone names to label values")
        return cls(
            kubeconfig=kubeconfig,
            context=config.get("context"),
            allowed_contexts=allowed,
            namespace=config.get("namespace", "default"),
            prometheus_url=config.get("prometheus-url"),
            alertmanager_url=config.get("alertmanager-url"),
            alert_receiver=config.get("alert-receiver"),
            plan=plan,
            load_host=config.get("load-host"),
            zone_label=config.get("zone-label", ZONE_LABEL),
            zone_map={str(k): str(v) for k, v in zone_map.items()},
            request_timeout=timeout_s,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "kubeconfig": self.kubeconfig,
            # The resolved context is pinned, so crash clean-up in a new process acts on
            # the same cluster even if the kubeconfig's current-context changed since.
            "context": self._context or self._requested_context,
            "allowed-contexts": list(self.allowed_contexts),
            "namespace": self.namespace,
            "prometheus-url": self.prometheus_url,
            "alertmanager-url": self.alertmanager_url,
            "alert-receiver": self.alert_receiver,
            "plan": self.plan,
            "load-host": self.load_host,
            "zone-label": self.zone_label,
            "zone-map": dict(self.zone_map),
            "request-timeout": self.request_timeout,
        }

    @classmethod
    def from_description(cls, description: dict[str, Any]) -> "KubernetesTarget":
        d = {k: v for k, v in description.items() if v is not None}
        source = d.get("source")
        return cls.from_config(d, base_dir=os.path.dirname(os.path.abspath(source)) if source else None)

    # -- alerting: the lab's alert checks read these (harness/targets/kubernetes/checks/alerts.py)
    cfg = property(lambda self: _alerts().endpoints(self))
    notifications = lambda self, since: _alerts().notifications(self, since)  # noqa: E731

    # -- the allow-list --------------------------------------------------------------------
    @property
    def context(self) -> str:
        """The kubeconfig context this target acts on (resolved, not yet checked)."""
        if self._context is None:
            self._context = self._resolve_context()
        return self._context

    def _resolve_context(self) -> str:
        from kubernetes.config import kube_config

        if not os.path.exists(self.kubeconfig):
            raise EnvironmentNotReady(
                f"kubeconfig {self.kubeconfig} does not exist: set 'kubeconfig' in the "
                "target file or KUBECONFIG (for the local test bed run tools/k8s-testbed/up.sh)"
            )
        try:
            contexts, active = kube_config.list_kube_config_contexts(config_file=self.kubeconfig)
        except Exception as exc:  # the loader raises ConfigException and friends
            raise EnvironmentNotReady(f"cannot read kubeconfig {self.kubeconfig}: {exc}") from None
        names = [c["name"] for c in contexts or []]
        if self._requested_context:
            if self._requested_context not in names:
                raise EnvironmentNotReady(
                    f"context '{self._requested_context}' is not in {self.kubeconfig} "
                    f"(contexts there: {', '.join(names) or 'none'})"
                )
            return self._requested_context
        if not active:
            raise EnvironmentNotReady(
                f"{self.kubeconfig} has no current-context: name one with 'context'"
            )
        return active["name"]

    def ensure_allowed(self) -> str:
        """Raise TargetRefused unless the context is on the allow-list. No API call."""
        ctx = self.context
        if ctx not in self.allowed_contexts:
            allowed = ", ".join(self.allowed_contexts) if self.allowed_contexts else "none"
            raise TargetRefused(
                f"Kubernetes context '{ctx}' (from {self.kubeconfig}) is not on this "
                f"target's allowed-contexts list (allowed: {allowed}). Nothing was touched. "
                f"If experiments are really meant to run against '{ctx}', add it to "
                "'allowed-contexts' in the target file."
            )
        return ctx

    # -- clients ----------------------------------------------------------------------------
    @property
    def api_client(self):
        """The kubernetes ApiClient of this target (only once the context is allowed)."""
        with self._lock:
            if self._api_client is None:
                self.ensure_allowed()
                from kubernetes import config

                try:
                    self._api_client = config.new_client_from_config(
                        config_file=self.kubeconfig, context=self.context, persist_config=False
                    )
                except Exception as exc:
                    raise EnvironmentNotReady(
                        f"cannot build a client for context '{self.context}' from "
                        f"{self.kubeconfig}: {exc}"
                    ) from None
                # Enough connections for concurrent evictions and checks in threads.
                self._api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] = 32
            return self._api_client

    @property
    def core(self):
        from kubernetes import client

        return client.CoreV1Api(self.api_client)

    @property
    def apps(self):
        from kubernetes import client

        return client.AppsV1Api(self.api_client)

    @property
    def autoscaling(self):
        from kubernetes import client

        return client.AutoscalingV2Api(self.api_client)

    @property
    def policy(self):
        from kubernetes import client

        return client.PolicyV1Api(self.api_client)

    def close(self) -> None:
        with self._lock:
            if self._api_client is not None:
                with contextlib.suppress(Exception):
                    self._api_client.close()
                self._api_client = None

    @contextlib.contextmanager
    def chaosk8s(self) -> Iterator[dict[str, str]]:
        """Call chaostoolkit-kubernetes against *this* target: yields its ``secrets``.

        chaosk8s loads the kubeconfig named by process-wide settings; they are pointed
        at this target's file and context for the duration of the call, and checked to
        resolve to the same API server as this target's own client.
        """
        self.ensure_allowed()
        from kubernetes.config import kube_config

        with _CHAOSK8S_LOCK:
            old_env = os.environ.get("KUBECONFIG")
            old_default = kube_config.KUBE_CONFIG_DEFAULT_LOCATION
            os.environ["KUBECONFIG"] = self.kubeconfig
            kube_config.KUBE_CONFIG_DEFAULT_LOCATION = self.kubeconfig
            try:
                secrets = {"KUBERNETES_CONTEXT": self.context, "KUBERNETES_VERIFY_SSL": "true"}
                from chaosk8s import create_k8s_api_client

                probe = create_k8s_api_client(secrets)
                theirs, ours = probe.configuration.host, self.api_client.configuration.host
                with contextlib.suppress(Exception):
                    probe.close()
                if theirs != ours:
                    raise TargetRefused(
                        f"chaostoolkit-kubernetes would reach {theirs}, not this target's "
                        f"API server {ours}: refusing to act"
                    )
                yield secrets
            finally:
                if old_env is None:
                    os.environ.pop("KUBECONFIG", None)
                else:
                    os.environ["KUBECONFIG"] = old_env
                kube_config.KUBE_CONFIG_DEFAULT_LOCATION = old_default

    def mark_before_change(self) -> None:
        """Remember the cluster's resourceVersion just before a fault acts.

        The engine starts checks once the first injection has returned; a pod killed
        and replaced within milliseconds would be invisible by then. Checks list the
        pods as they were at this mark (an exact-resourceVersion read) and watch from
        it, so every change since the fault acted is seen."""
        data = self.list_json(self.core.list_namespace, limit=1)
        rv = (data.get("metadata") or {}).get("resourceVersion")
        if rv:
            self.change_marks.append((time.time(), rv))
            del self.change_marks[:-20]

    def mark_at_or_before(self, when: float) -> str | None:
        for t, rv in reversed(self.change_marks):
            if when - 120.0 <= t <= when:
                return rv
        return None

    # -- raw JSON reads (fast for big lists: no model deserialisation) ------------------------
    def list_json(self, method, *args, **kwargs) -> dict[str, Any]:
        kwargs.setdefault("_request_timeout", self.request_timeout)
        resp = method(*args, _preload_content=False, **kwargs)
        try:
            return json.loads(resp.data)
        finally:
            resp.release_conn()

    def pods(self, namespace: str | None, selector: dict[str, str] | str | None = None) -> list[dict]:
        """Pods (as JSON dicts) in a namespace (all namespaces when None)."""
        sel = _selector_string(selector)
        if namespace is None:
            data = self.list_json(self.core.list_pod_for_all_namespaces, label_selector=sel)
        else:
            data = self.list_json(self.core.list_namespaced_pod, namespace, label_selector=sel)
        return data.get("items") or []

    def pods_on_node(self, node: str) -> list[dict]:
        data = self.list_json(
            self.core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={node}"
        )
        return data.get("items") or []

    def nodes(self, selector: dict[str, str] | str | None = None) -> list[dict]:
        data = self.list_json(self.core.list_node, label_selector=_selector_string(selector))
        return data.get("items") or []

    def zone_value(self, zone: str) -> str:
        """The label value of an experiment's zone name (through ``zone-map``)."""
        return self.zone_map.get(zone, zone)

    def zone_of(self, node: dict) -> str | None:
        return ((node.get("metadata") or {}).get("labels") or {}).get(self.zone_label)

    # -- Target interface ----------------------------------------------------------------------
    def preflight(self) -> None:
        self.ensure_allowed()
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        try:
            client.VersionApi(self.api_client).get_code(_request_timeout=self.request_timeout)
        except ApiException as exc:
            raise EnvironmentNotReady(
                f"the API server of context '{self.context}' answered {exc.status} {exc.reason}: "
                "check the credentials in the kubeconfig"
            ) from None
        except Exception as exc:
            raise EnvironmentNotReady(
                f"cannot reach the API server of context '{self.context}' "
                f"({self.api_client.configuration.host}): {exc}"
            ) from None
        try:
            self.core.read_namespace(self.namespace, _request_timeout=self.request_timeout)
        except ApiException as exc:
            if exc.status == 404:
                raise EnvironmentNotReady(
                    f"namespace '{self.namespace}' does not exist in context '{self.context}'"
                ) from None
            raise EnvironmentNotReady(
                f"cannot read namespace '{self.namespace}': {exc.status} {exc.reason}"
            ) from None

    def snapshot(self) -> dict[str, Any]:
        """Nodes Ready/cordoned and the namespace's Deployments' ready replicas."""
        out: dict[str, Any] = {}
        try:
            nodes = self.nodes()
            out["nodes_ready"] = sum(1 for n in nodes if node_is_ready(n))
            out["nodes_unschedulable"] = sum(
                1 for n in nodes if (n.get("spec") or {}).get("unschedulable")
            )
            deps = self.list_json(
                self.apps.list_namespaced_deployment, self.namespace, _request_timeout=2
            ).get("items") or []
            for d in deps:
                name = d["metadata"]["name"]
                out[f"deployment/{name}/desired"] = (d.get("spec") or {}).get("replicas", 1)
                out[f"deployment/{name}/ready"] = (d.get("status") or {}).get("readyReplicas", 0)
        except Exception:  # a gauge must never break the run
            return out
        return out


# -- pod and node state helpers shared by faults and checks ---------------------------------------
def node_is_ready(node: dict) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def node_is_simulated(node: dict) -> bool:
    meta = node.get("metadata") or {}
    return (meta.get("annotations") or {}).get(KWOK_NODE_ANNOTATION) == "fake" or (
        meta.get("labels") or {}
    ).get("type") == "kwok"


def pod_is_terminating(pod: dict) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def pod_is_ready(pod: dict) -> bool:
    if pod_is_terminating(pod):
        return False
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def pod_is_serving(pod: dict, ready_nodes: set[str] | None) -> bool:
    """Ready, not terminating, and (when known) on a Ready node."""
    if not pod_is_ready(pod):
        return False
    if ready_nodes is None:
        return True
    return (pod.get("spec") or {}).get("nodeName") in ready_nodes


def _alerts():
    from harness.targets.kubernetes.checks import alerts

    return alerts

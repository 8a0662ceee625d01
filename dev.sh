#!/usr/bin/env bash
# The project's two commands, and the set-up both share.
#
#   ./dev.sh demo    set up whatever is missing, start the local lab, run the pod-kill
#                    experiment under Locust load: verdict + report path (lab stays up)
#   ./dev.sh test    set up whatever is missing (incl. the Kubernetes test bed build),
#                    then run every test: unit, lab, Kubernetes, experiment files
#   ./dev.sh setup   only the set-up (add --k8s to also build the Kubernetes test bed)
#   ./dev.sh bench   run the benchmarks (ratios against baselines measured in the same run)
#
# Set-up is idempotent and quick when everything is present: Debian packages
# (we are root), Toxiproxy built from its Go module, the project venv (.venv),
# Patroni's own venv (the postgres user cannot read a Python under /root) and, for
# tests, the Kubernetes test bed binaries (cached by version under /var/cache).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

APT_PACKAGES=(iproute2 iptables util-linux procps haproxy prometheus prometheus-alertmanager
  etcd-server etcd-client postgresql-15 prometheus-postgres-exporter pgbackrest stress-ng python3-venv chromium ca-certificates mariadb-server mariadb-client)
TOXIPROXY_VERSION=v2.12.0
CACHE=${HARNESS_CACHE:-/var/cache/resilience-harness}

setup_system() {
  [ "$(id -u)" = 0 ] || die "set-up installs system packages: run as root"
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

setup_toxiproxy() {
  # The server reports its version as "git" when built with go install, so the cache
  # file's name carries the version instead.
  local cached="$CACHE/toxiproxy-server-$TOXIPROXY_VERSION"
  if [ ! -x "$cached" ]; then
    command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || die "Go is needed to build Toxiproxy (no Debian/PyPI package ships its server)"
    local go=go; command -v go >/dev/null || go=/usr/local/go/bin/go
    say "building toxiproxy-server ${TOXIPROXY_VERSION} from its Go module (about a minute)"
    mkdir -p "$CACHE/gobin"
    GOBIN="$CACHE/gobin" GOFLAGS=-p=2 "$go" install "github.com/Shopify/toxiproxy/v2/cmd/server@${TOXIPROXY_VERSION}"
    mv "$CACHE/gobin/server" "$cached"
  fi
  cmp -s "$cached" /usr/local/bin/toxiproxy-server 2>/dev/null || install -m 0755 "$cached" /usr/local/bin/toxiproxy-server
}

setup_python() {
  local py=${PYTHON:-python3}
  local stamp
  stamp=$(cat pyproject.toml | sha256sum | cut -c1-16)
  if [ ! -x .venv/bin/python ]; then
    say "creating the project venv (.venv)"
    "$py" -m venv .venv
  fi
  if [ ! -f ".venv/.installed-$stamp" ]; then
    say "installing Python dependencies (pinned in pyproject.toml)"
    .venv/bin/pip install -q --upgrade pip >/dev/null
    .venv/bin/pip install -q -e ".[test]"
    rm -f .venv/.installed-*
    touch ".venv/.installed-$stamp"
  fi
  .venv/bin/python -m harness.lab.install
}

setup_k8s() {
  say "Kubernetes test bed binaries (cached by version; a cold build takes ~16 min on 2 cores)"
  bash tools/k8s-testbed/build.sh
}

export PATH="$ROOT/.venv/bin:/usr/local/bin:/usr/local/go/bin:$PATH"

cmd=${1:-help}
shift || true
case "$cmd" in
  setup)
    setup_system; setup_toxiproxy; setup_python
    [ "${1:-}" = "--k8s" ] && setup_k8s
    say "set-up complete" ;;
  demo)
    setup_system; setup_toxiproxy; setup_python
    exec .venv/bin/harness demo --keep-lab "$@" ;;
  test)
    setup_system; setup_toxiproxy; setup_python; setup_k8s
    # Tests keep their state (journals, lock, the session lab's run dir) apart from a
    # developer's own lab and runs.
    export HARNESS_STATE_DIR=${HARNESS_STATE_DIR:-/var/lib/resilience-harness/test}
    say "running the tests (one lab for the whole session)"
    # --durations: the slowest items are printed at the end, so a CI log says where the
    # suite's time goes.
    exec .venv/bin/python -m pytest --lab=auto -p no:cacheprovider -ra --durations=30 "$@" tests experiments scenarios drills ;;
  bench)
    setup_system; setup_toxiproxy; setup_python
    export HARNESS_STATE_DIR=${HARNESS_STATE_DIR:-/var/lib/resilience-harness/bench}
    for b in benchmarks/*.py; do say "$b"; .venv/bin/python "$b" "$@"; done ;;
  *)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

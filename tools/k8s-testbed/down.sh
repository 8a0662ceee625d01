#!/usr/bin/env bash
# Stop the Kubernetes test bed and wait until every one of its processes is gone.
# Harmless when nothing runs.
#
# Usage: tools/k8s-testbed/down.sh [--name NAME]     (default rh-testbed)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
source "$HERE/versions.sh"

NAME=rh-testbed
while (( $# )); do
    case "$1" in
        --name) NAME="$2"; shift 2 ;;
        -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
        *) echo "down.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

LOG_PREFIX="[k8s-testbed down:$NAME]"
say() { echo "$LOG_PREFIX $(date +%H:%M:%S) $*" >&2; }

export KWOK_WORKDIR="${KWOK_WORKDIR:-$HOME/.kwok}"
CLUSTER_DIR="$KWOK_WORKDIR/clusters/$NAME"
KWOKCTL="$(rh_bin_dir)/kwokctl"

# The cluster's processes: those in its pid files, plus any process whose command line
# names the cluster's directory (all components are started with paths inside it).
cluster_pids() {
    local f pid
    if [[ -d "$CLUSTER_DIR/pids" ]]; then
        for f in "$CLUSTER_DIR"/pids/*.pid; do
            [[ -f "$f" ]] || continue
            pid="$(tr -dc '0-9' <"$f")"
            [[ -n "$pid" && -d "/proc/$pid" ]] && echo "$pid"
        done
    fi
    for f in /proc/[0-9]*/cmdline; do
        pid="${f#/proc/}"; pid="${pid%/cmdline}"
        [[ "$pid" == "$$" ]] && continue
        if { tr '\0' ' ' <"$f"; } 2>/dev/null | grep -qF -- "$CLUSTER_DIR/"; then
            echo "$pid"
        fi
    done
}

if [[ ! -d "$CLUSTER_DIR" ]] && [[ -z "$(cluster_pids | sort -u)" ]]; then
    say "no cluster named $NAME: nothing to do"
    exit 0
fi

PIDS="$(cluster_pids | sort -u | tr '\n' ' ')"
T0=$SECONDS
if [[ -x "$KWOKCTL" && -d "$CLUSTER_DIR" ]]; then
    "$KWOKCTL" delete cluster --name "$NAME" >&2 || say "kwokctl delete cluster failed; stopping the processes directly"
fi

# kwokctl returns before its processes have exited: wait for them, then insist.
wait_gone() {  # $1 = seconds
    local deadline=$((SECONDS + $1)) pid alive
    while :; do
        alive=""
        for pid in $PIDS $(cluster_pids); do
            [[ -d "/proc/$pid" ]] && alive+="$pid "
        done
        PIDS="$alive"
        [[ -z "$alive" ]] && return 0
        (( SECONDS >= deadline )) && return 1
        sleep 0.2
    done
}
if ! wait_gone 15; then
    say "still running after 15 s: sending SIGTERM to $PIDS"
    kill -TERM $PIDS 2>/dev/null || true
    if ! wait_gone 10; then
        say "still running: sending SIGKILL to $PIDS"
        kill -KILL $PIDS 2>/dev/null || true
        wait_gone 5 || { say "FAILED: processes $PIDS would not exit"; exit 1; }
    fi
fi
rm -rf "$CLUSTER_DIR"
say "cluster $NAME stopped; no process left ($((SECONDS - T0)) s)"

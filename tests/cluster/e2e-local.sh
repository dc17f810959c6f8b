#!/usr/bin/env bash
# `make e2e-local`: the e2e tier on this machine, no Docker engine or registry needed. A single-node
# cluster of local processes comes up, the images are built (or taken from .build/images) and imported
# into its containerd, the cluster-agnostic suite runs (`make e2e-run`, as `make e2e-kind` does on kind),
# and the cluster goes down again, also on failure, after printing the node's logs.
#
#   E2E_KEEP_CLUSTER=1 make e2e-local     # leave the cluster up for a look (`make cluster-down` later)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cluster=tests/cluster/cluster.sh

timings=()
phase() {
    local name="$1" start=$SECONDS
    shift
    echo "e2e-local: $name" >&2
    "$@"
    timings+=("$(printf '%-9s %5ds' "$name" $((SECONDS - start)))")
}

finish() {
    local rc=$? line
    trap - EXIT
    if ((rc != 0)); then
        echo "e2e-local: failed (exit $rc); the node's components and their last log lines:" >&2
        bash "$cluster" status >&2 || true
        bash "$cluster" logs >&2 || true
    fi
    if [[ "${E2E_KEEP_CLUSTER:-0}" == 1 ]]; then
        echo "e2e-local: cluster kept (E2E_KEEP_CLUSTER=1): KUBECONFIG=$PWD/.build/cluster/kubeconfig" >&2
    else
        phase down bash "$cluster" down || rc=1
    fi
    for line in "${timings[@]}"; do echo "e2e-local: time $line" >&2; done
    exit "$rc"
}
trap finish EXIT

phase cluster bash "$cluster" up
phase images bash tests/cluster/images.sh --import
phase suite make e2e-run KUBECONFIG="$PWD/.build/cluster/kubeconfig"

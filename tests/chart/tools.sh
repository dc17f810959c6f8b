#!/usr/bin/env bash
# What the chart and alerting tests of `make test` drive: helm and chart-testing's ct, built from their Go
# modules into .build/{helm,ct}/<version>/ (tests/k8s-tools/build.sh, cached), and promtool and the Pushgateway from Debian's
# `prometheus` and `prometheus-pushgateway` packages (installed when missing, as tests/cluster does).
# The packages' own daemons are not started on install (policy-rc.d): a system Prometheus on :9090 or
# Pushgateway on :9091 would take the ports the e2e monitoring harness starts its own on.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
log() { printf 'test-tools: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}
# shellcheck source=../cluster/lib.sh
source "$repo_root/tests/cluster/lib.sh"
# Not root (a CI runner with passwordless sudo): ensure_packages' apt-get goes through sudo.
as_root() { "$@"; }
if [[ $EUID -ne 0 ]] && command -v sudo >/dev/null 2>&1; then
    as_root() { sudo -n "$@"; }
    apt-get() { sudo -n env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }
fi

bash "$repo_root/tests/k8s-tools/build.sh" helm >/dev/null
bash "$repo_root/tests/k8s-tools/build.sh" ct >/dev/null

missing=0
for binary in /usr/bin/promtool /usr/bin/prometheus-pushgateway; do [[ -x $binary ]] || missing=1; done
policy=/usr/sbin/policy-rc.d
if [[ $missing == 1 && ! -e $policy ]]; then
    as_root sh -c "printf '#!/bin/sh\\nexit 101\\n' >$policy && chmod 0755 $policy"
    trap 'as_root rm -f "$policy"' EXIT
fi
ensure_packages prometheus prometheus-pushgateway
for binary in /usr/bin/promtool /usr/bin/prometheus-pushgateway; do
    [[ -x $binary ]] || die "$binary missing after installing its package"
done

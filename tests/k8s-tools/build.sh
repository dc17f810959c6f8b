#!/usr/bin/env bash
# Builds the local Kubernetes control plane used by the integration tests
# (kube-apiserver, kube-controller-manager, kubectl, etcd) from the official
# Go modules through the Go module proxy, so no prebuilt-binary download is
# needed. Prints the directory holding the binaries as the LAST stdout line;
# all build chatter goes to stderr.
#
#   bash tests/k8s-tools/build.sh            # -> .build/k8s/<k8s-version>
#   KUBEBUILDER_ASSETS=/dir bash tests/k8s-tools/build.sh   # -> /dir, no build
#   bash tests/k8s-tools/build.sh helm       # only helm -> .build/helm/<helm-version>
#   bash tests/k8s-tools/build.sh ct         # only chart-testing's ct -> .build/ct/<ct-version>
#
# The default run also builds helm (for the e2e tier) after the control plane;
# its directory is then printed before the last line, never as the last.
#
# Environment:
#   K8S_TOOLS_NODE=1     also build CoreDNS and crictl (tests/cluster's node).
#   KUBEBUILDER_ASSETS   ready binaries (kube-apiserver + etcd at least); used
#                        as-is when complete, like controller-runtime's envtest.
#   K8S_TOOLS_BUILD_ROOT where versioned bin dirs go (default <repo>/.build/k8s).
#   HELM_BUILD_ROOT      where helm's versioned dir goes (default <repo>/.build/helm).
#   GO                   go command (default: go on PATH, else /usr/local/go/bin/go).
#
# Idempotent: a binary is rebuilt only when missing or when its module's
# go.mod/go.sum, the Go version or the build flags changed (stamp files).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"

log() { printf 'k8s-tools: %s\n' "$*" >&2; }

target="${1:-all}"
case "$target" in
    all | helm | ct) ;;
    *)
        log "unknown target '$target' (expected: helm, ct, or nothing for everything)"
        exit 2
        ;;
esac

is_exe() { [[ -f "$1" && -x "$1" ]]; }

# 1. Honour KUBEBUILDER_ASSETS when it already holds a usable control plane.
if [[ -n "${KUBEBUILDER_ASSETS:-}" && "$target" == all ]]; then
    if is_exe "$KUBEBUILDER_ASSETS/kube-apiserver" && is_exe "$KUBEBUILDER_ASSETS/etcd"; then
        for optional in kube-controller-manager kubectl; do
            is_exe "$KUBEBUILDER_ASSETS/$optional" ||
                log "note: $KUBEBUILDER_ASSETS has no $optional"
        done
        log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS (nothing built)"
        cd "$KUBEBUILDER_ASSETS" && pwd
        exit 0
    fi
    log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks kube-apiserver or etcd; building instead"
fi

# 2. Pinned versions come from the tools modules' go.mod files (single source).
k8s_version="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$here/go.mod")"
etcd_version="$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" {print $3}' "$here/etcd/go.mod")"
if [[ -z "$k8s_version" || -z "$etcd_version" ]]; then
    log "cannot read pinned versions from $here/go.mod or $here/etcd/go.mod"
    exit 1
fi

GO="${GO:-}"
if [[ -z "$GO" ]]; then
    if command -v go >/dev/null 2>&1; then GO="$(command -v go)"; else GO=/usr/local/go/bin/go; fi
fi
if ! "$GO" version >/dev/null 2>&1; then
    log "no usable Go toolchain (tried '$GO'); install Go >= 1.26 or set GO"
    exit 1
fi

build_root="${K8S_TOOLS_BUILD_ROOT:-$repo_root/.build/k8s}"
bin_dir="$build_root/$k8s_version"

# Only the Go module proxy is reachable: never let go fetch another toolchain.
export GOTOOLCHAIN=local
export CGO_ENABLED=0
build_flags=(-trimpath)

# Serialise concurrent callers (e.g. parallel pytest sessions) per bin dir
# (`build.sh helm` locks only helm's dir: it never waits for a control-plane build).
if [[ "$target" == all ]]; then
    mkdir -p "$bin_dir"
    exec 9>"$bin_dir/.lock"
    flock 9
    rm -rf "$bin_dir"/.tmp.* # leftovers of an interrupted build
fi

go_version="$("$GO" env GOVERSION)"

# stamp_for MODULE_DIR LDFLAGS -> hash of everything that determines the bins.
stamp_for() {
    {
        cat "$1/go.mod" "$1/go.sum"
        printf '%s\n' "$go_version" "${build_flags[*]}" "$2" "$CGO_ENABLED"
    } | sha256sum | cut -d' ' -f1
}

# build_module MODULE_DIR STAMP_NAME LDFLAGS NAME=PKG... : builds missing or
# stale binaries.
# A stamp mismatch rebuilds all of the module's binaries, so after a success
# every one of them matches the new stamp.
build_module() {
    local mod_dir="$1" stamp_name="$2" ldflags="$3"
    shift 3
    local stamp want_stamp have_stamp="" names=() pkgs=() spec name
    want_stamp="$(stamp_for "$mod_dir" "$ldflags")"
    stamp="$bin_dir/.$stamp_name.stamp"
    [[ -f "$stamp" ]] && have_stamp="$(cat "$stamp")"
    for spec in "$@"; do
        name="${spec%%=*}"
        if [[ "$have_stamp" == "$want_stamp" ]] && is_exe "$bin_dir/$name"; then
            continue
        fi
        names+=("$name")
        pkgs+=("${spec#*=}")
    done
    if [[ ${#pkgs[@]} -eq 0 ]]; then
        log "$stamp_name: up to date"
        return 0
    fi
    log "$stamp_name: building ${names[*]} with $go_version (slow when cold)"
    local tmp out start=$SECONDS
    tmp="$(mktemp -d "$bin_dir/.tmp.XXXXXX")"
    # One `go build` for several main packages shares the compile work; a
    # single package gets an explicit file name (etcd's package ends in /v3).
    out="$tmp/"
    [[ ${#pkgs[@]} -eq 1 ]] && out="$tmp/${names[0]}"
    if ! (cd "$mod_dir" && "$GO" build "${build_flags[@]}" -ldflags="$ldflags" -o "$out" "${pkgs[@]}") >&2; then
        rm -rf "$tmp"
        log "$stamp_name: go build failed"
        return 1
    fi
    for name in "${names[@]}"; do
        mv -f "$tmp/$name" "$bin_dir/$name"
    done
    rm -rf "$tmp"
    printf '%s\n' "$want_stamp" >"$stamp"
    log "$stamp_name: built in $((SECONDS - start))s"
}

# helm for the e2e tier, from its own tools module into its own versioned dir,
# stamped like helm's Makefile does (version, and the Kubernetes minor its
# client-go speaks, which `helm template`'s default .Capabilities reports).
build_helm() {
    local helm_version helm_dir client_go ldflags
    helm_version="$(awk '$1 == "require" && $2 == "helm.sh/helm/v3" {print $3}' "$here/helm/go.mod")"
    client_go="$(awk '$1 == "k8s.io/client-go" {print $2}' "$here/helm/go.mod")"
    if [[ -z "$helm_version" || -z "$client_go" ]]; then
        log "cannot read helm's or client-go's version from $here/helm/go.mod"
        return 1
    fi
    local kube_minor="${client_go#v0.}"
    kube_minor="${kube_minor%%.*}"
    helm_dir="${HELM_BUILD_ROOT:-$repo_root/.build/helm}/$helm_version"
    mkdir -p "$helm_dir"
    exec 8>"$helm_dir/.lock"
    flock 8
    rm -rf "$helm_dir"/.tmp.*
    ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
    ldflags+=" -X helm.sh/helm/v3/internal/version.metadata= -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
    for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
        ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$kube_minor"
    done
    bin_dir="$helm_dir" build_module "$here/helm" "helm-$helm_version" "$ldflags" "helm=helm.sh/helm/v3/cmd/helm"
    echo "$helm_dir"
}

# chart-testing's ct (`ct lint` in make test), from its own tools module into its own versioned dir, with
# the Chart.yaml schema and yamllint config `ct lint` reads from its module's etc/ beside it.
build_ct() {
    local ct_version ct_dir ldflags mod_src
    ct_version="$(awk '$1 == "require" && $2 == "github.com/helm/chart-testing/v3" {print $3}' "$here/ct/go.mod")"
    if [[ -z "$ct_version" ]]; then
        log "cannot read chart-testing's version from $here/ct/go.mod"
        return 1
    fi
    ct_dir="${CT_BUILD_ROOT:-$repo_root/.build/ct}/$ct_version"
    mkdir -p "$ct_dir"
    exec 7>"$ct_dir/.lock"
    flock 7
    rm -rf "$ct_dir"/.tmp.*
    ldflags="-s -w -X github.com/helm/chart-testing/v3/ct/cmd.Version=$ct_version"
    bin_dir="$ct_dir" build_module "$here/ct" "ct-$ct_version" "$ldflags" "ct=github.com/helm/chart-testing/v3/ct"
    if [[ ! -f "$ct_dir/chart_schema.yaml" || ! -f "$ct_dir/lintconf.yaml" ]]; then
        mod_src="$(cd "$here/ct" && "$GO" list -m -f '{{.Dir}}' github.com/helm/chart-testing/v3)"
        cp -f "$mod_src/etc/chart_schema.yaml" "$mod_src/etc/lintconf.yaml" "$ct_dir/"
    fi
    echo "$ct_dir"
}

if [[ "$target" == helm ]]; then
    build_helm
    exit 0
fi
if [[ "$target" == ct ]]; then
    build_ct
    exit 0
fi

# Stamp the release into the binaries like Kubernetes' own build does
# (hack/lib/version.sh); otherwise /version reports v0.0.0-master.
k8s_minor="${k8s_version#v1.}"
k8s_minor="${k8s_minor%%.*}"
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1"
    k8s_ldflags+=" -X $pkg.gitMinor=$k8s_minor -X $pkg.gitTreeState=clean"
done

build_module "$here" "kubernetes-$k8s_version" "$k8s_ldflags" \
    "kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver" \
    "kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager" \
    "kubectl=k8s.io/kubernetes/cmd/kubectl" \
    "kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler" \
    "kubelet=k8s.io/kubernetes/cmd/kubelet" \
    "kube-proxy=k8s.io/kubernetes/cmd/kube-proxy"

build_module "$here/etcd" "etcd-$etcd_version" "-s -w" "etcd=go.etcd.io/etcd/server/v3"

# The local single-node cluster's extras (tests/cluster): only on request, so
# the integration tier's build stays what it was.
if [[ "${K8S_TOOLS_NODE:-0}" == 1 ]]; then
    coredns_version="$(awk '$1 == "require" && $2 == "github.com/coredns/coredns" {print $3}' "$here/coredns/go.mod")"
    crictl_version="$(awk '$1 == "require" && $2 == "sigs.k8s.io/cri-tools" {print $3}' "$here/crictl/go.mod")"
    build_module "$here/coredns" "coredns-$coredns_version" "-s -w" "coredns=github.com/coredns/coredns"
    build_module "$here/crictl" "crictl-$crictl_version" "-s -w" "crictl=sigs.k8s.io/cri-tools/cmd/crictl"
fi

build_helm

echo "$bin_dir"

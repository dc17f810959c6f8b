#!/usr/bin/env bash
# Builds the local cluster's images without a Docker engine or a registry, from Debian packages and
# PyPI only, and imports them into containerd's k8s.io namespace (docs/e2e.md):
#
#   localhost/dynoline-base:<key>                 debootstrap --variant=minbase bookworm + python3 (build only)
#   docker.io/library/dynoline-pause:local        a static pause binary (tests/cluster/images/pause.c)
#   docker.io/library/dynoline:e2e                the repo's Dockerfile, FROM the base, offline wheels
#   docker.io/library/dynoline-e2e-postgres:15    Debian's PostgreSQL 15 (tests/cluster/images/postgres/)
#
#   bash tests/cluster/images.sh                  build what is missing, import nothing
#   bash tests/cluster/images.sh --import         ... and import into the containerd at $CONTAINERD_ADDRESS
#   bash tests/cluster/images.sh --address SOCK   ... and import into the containerd at SOCK
#
# Every result is a docker-archive under .build/images/ named by a hash of its inputs, so a warm run
# builds nothing and only (re)imports. buildah keeps its own storage under .build/images/buildah (vfs:
# no mounts left behind); nothing goes to /var/lib/containers. Progress goes to stderr; a failure ends
# with one line `images: error: ...` and a non-zero exit.
#
# Environment:
#   CONTAINERD_ADDRESS   containerd socket for --import (default /run/dynoline/containerd/containerd.sock)
#   DYNOLINE_IMAGES_DIR  cache directory (default <repo>/.build/images)
#   BUILDAH_ISOLATION    buildah RUN isolation (default chroot: the host's network, so apt reaches the mirror)
#   PYTHON               a Python 3.11 with pip that downloads the wheels (default .venv/bin/python, python3)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
images_src="$here/images"
cache="${DYNOLINE_IMAGES_DIR:-$repo_root/.build/images}"
address="${CONTAINERD_ADDRESS:-/run/dynoline/containerd/containerd.sock}"
isolation="${BUILDAH_ISOLATION:-chroot}"

suite=bookworm
base_packages=(python3 python3-venv ca-certificates)
pause_ref=docker.io/library/dynoline-pause:local
project_ref=docker.io/library/dynoline:e2e
postgres_ref=docker.io/library/dynoline-e2e-postgres:15

log() { printf 'images: %s\n' "$*" >&2; }
die() {
    printf 'images: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
}

do_import=0
while [[ $# -gt 0 ]]; do
    case "$1" in
    --import) do_import=1 ;;
    --address)
        [[ $# -ge 2 && -n "$2" ]] || die "--address needs a socket path"
        address="$2"
        do_import=1
        shift
        ;;
    --address=*)
        address="${1#--address=}"
        do_import=1
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done

[[ "$(id -u)" == 0 ]] || die "needs root (debootstrap, buildah storage, containerd's socket)"
[[ "$(uname -m)" == x86_64 ]] || die "only x86_64 is supported (the wheels are manylinux x86_64), not $(uname -m)"

# ------------------------------------------------------------------------------------------------ tools

# shellcheck source=tests/cluster/lib.sh
source "$here/lib.sh"

# Fail before minutes of building, not after.
if [[ $do_import == 1 && ! -S "$address" ]]; then
    die "no containerd socket at $address (start the cluster's containerd, or pass --address)"
fi

tools=(debootstrap buildah gcc libc6-dev ca-certificates)
[[ $do_import == 1 ]] && tools+=(containerd)
ensure_packages "${tools[@]}"

buildah_cmd=(buildah --root "$cache/buildah/root" --runroot "$cache/buildah/run" --storage-driver vfs)
bah() { "${buildah_cmd[@]}" "$@"; }

# buildah bud that leaves no working container behind in this private storage, even when it fails
# (its own --force-rm trips over the aliased `wheels` stage here: "identifier is not an image").
bud() {
    local status=0
    bah bud --quiet --isolation "$isolation" --format docker --pull=never "$@" || status=$?
    bah rm --all >/dev/null 2>&1 || true
    return "$status"
}

# ------------------------------------------------------------------------------------------------ helpers

mkdir -p "$cache"
work="$(mktemp -d "$cache/tmp.XXXXXX")"

# debootstrap mounts /proc, /sys, ... inside its target and leaves them when it fails: unmount whatever
# is still mounted under the scratch directory (deepest first) before removing it.
cleanup() {
    local status=$? mnt
    while read -r mnt; do
        umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
    done < <(awk -v w="$work/" 'index($2, w) == 1 {print $2}' /proc/self/mounts | sort -r)
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

# A short content hash of the named files and strings, in argument order (the cache keys).
key_of() {
    local item
    for item in "$@"; do
        if [[ -f "$item" ]]; then
            printf 'file %s\n' "${item#"$repo_root"/}"
            sha256sum <"$item"
        else
            printf 'text %s\n' "$item"
        fi
    done | sha256sum | cut -c1-16
}

# A hash of a source tree's file names and contents, bytecode caches excluded.
tree_key() {
    (cd "$repo_root" && find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.py[co]' -print0 |
        LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

# Keeps only the newest cache entry of one kind: $1 the entry just written, named <kind>-<16 hex>[.tar];
# other keys of the same kind go (a 16-character glob, so dynoline-e2e never matches dynoline-e2e-postgres).
prune_older() {
    local keep="$1" old prefix suffix=""
    [[ "$keep" == *.tar ]] && suffix=.tar
    prefix="${keep%-*}"
    for old in "$prefix"-????????????????"$suffix"; do
        [[ "$old" != "$keep" && -e "$old" ]] && rm -rf "$old"
    done
    return 0
}

# Writes a single-layer docker-archive (manifest.json + config + layer.tar), the format both
# `buildah pull docker-archive:` and `ctr images import` read.
#   $1 rootfs dir   $2 image ref   $3 the config's "config" object (JSON)   $4 output .tar
docker_archive() {
    local rootfs="$1" ref="$2" config="$3" out="$4" dir layer_sum config_json config_sum created
    dir="$(mktemp -d "$work/archive.XXXXXX")"
    # Numeric owners, sorted entries and no atime: the layer depends on the files alone.
    tar --numeric-owner --xattrs --xattrs-include='*' --sort=name -C "$rootfs" -cf "$dir/layer.tar" .
    layer_sum="$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)"
    mkdir "$dir/$layer_sum"
    mv "$dir/layer.tar" "$dir/$layer_sum/layer.tar"
    created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    config_json="$(printf '{"architecture":"amd64","os":"linux","created":"%s","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"%s","created_by":"tests/cluster/images.sh"}]}' \
        "$created" "$config" "$layer_sum" "$created")"
    config_sum="$(printf '%s' "$config_json" | sha256sum | cut -d' ' -f1)"
    printf '%s' "$config_json" >"$dir/$config_sum.json"
    printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' \
        "$config_sum" "$ref" "$layer_sum" >"$dir/manifest.json"
    tar -C "$dir" -cf "$out.partial" manifest.json "$config_sum.json" "$layer_sum"
    mv "$out.partial" "$out"
    rm -rf "$dir"
}

# Pushes an image from buildah's storage to a docker-archive, then drops it and the build's dangling
# intermediate images from that storage (the archive is the cache; vfs keeps full copies).
export_image() {
    local ref="$1" out="$2"
    bah push --quiet "$ref" "docker-archive:$out.partial:$ref" >/dev/null
    mv "$out.partial" "$out"
    bah rmi --force "$ref" >/dev/null
    bah rmi --prune >/dev/null 2>&1 || true
}

size_of() { du -h --apparent-size "$1" | cut -f1; }

# ------------------------------------------------------------------------------------------------ base

# The Debian mirror apt on this machine uses for $suite main (sources.list or deb822 .sources alike).
debian_mirror() {
    # shellcheck disable=SC2016 # $(REPO_URI) is apt's own placeholder, not a shell expansion
    apt-get indextargets --format '$(REPO_URI)' "Release: $suite" 'Component: main' 'Identifier: Packages' |
        head -n 1
}

# What the slim official images also leave out of every later package install: docs (not copyright
# notices), man pages, info and translations. Goes into the base's /etc/dpkg/dpkg.cfg.d/.
dpkg_excludes='path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*'

build_base() {
    local out="$1" ref="$base_ref" mirror rootfs
    mirror="$(debian_mirror)"
    [[ -n "$mirror" ]] || die "no Debian mirror for '$suite main' in apt's sources (/etc/apt/sources.list*)"
    rootfs="$work/base-rootfs"
    log "base: debootstrap --variant=minbase $suite from $mirror (a few minutes)"
    local packages
    packages="$(IFS=,; echo "${base_packages[*]}")"
    if ! debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" \
        >"$work/debootstrap.log" 2>&1; then
        tail -n 20 "$work/debootstrap.log" >&2
        die "debootstrap of $suite from $mirror failed (log above)"
    fi
    mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
    printf '%s\n' "$dpkg_excludes" >"$rootfs/etc/dpkg/dpkg.cfg.d/01-dynoline-slim"
    # What the excludes would have left out, plus the downloaded .debs, the package lists (a build that
    # needs apt runs apt-get update), logs, device nodes (the runtime makes /dev) and the host's
    # resolv.conf/hostname that debootstrap copied in.
    local r="${rootfs:?}"
    rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/lib/apt/lists/* \
        "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/lintian/* "$r"/var/log/bootstrap.log \
        "${r:?}"/dev/* "${r:?}"/tmp/* "$r"/etc/resolv.conf "$r"/etc/hostname
    find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    docker_archive "$rootfs" "$ref" \
        '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","LANG=C.UTF-8"],"Cmd":["bash"]}' \
        "$out"
    rm -rf "$rootfs"
}

base_key="$(key_of "$(declare -f debian_mirror build_base docker_archive)" "$suite" "${base_packages[*]}" "$dpkg_excludes")"
base_ref="localhost/dynoline-base:$base_key"
base_tar="$cache/base-$base_key.tar"

# The base in buildah's storage, for FROM: loaded from its archive unless already there.
base_in_buildah() {
    if ! bah inspect --type image "$base_ref" >/dev/null 2>&1; then
        bah pull --quiet "docker-archive:$base_tar" >/dev/null
    fi
}

# ------------------------------------------------------------------------------------------------ pause

build_pause() {
    local out="$1" rootfs="$work/pause-rootfs"
    mkdir -p "$rootfs"
    gcc -static -O2 -Wall -Wextra -Werror -o "$rootfs/pause" "$images_src/pause.c"
    strip "$rootfs/pause"
    # uid 65535 like Kubernetes' own pause image: the sandbox needs no privilege.
    docker_archive "$rootfs" "$pause_ref" '{"Entrypoint":["/pause"],"User":"65535:65535"}' "$out"
}

# ------------------------------------------------------------------------------------------------ project

# A Python 3.11 with pip: the wheels must be cp311 like the base's Debian python3 (3.11).
wheel_python() {
    local py
    for py in "${PYTHON:-}" "$repo_root/.venv/bin/python" python3.11 python3; do
        if [[ -z "$py" ]] || ! command -v "$py" >/dev/null 2>&1; then
            continue
        fi
        if [[ "$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" == 3.11 ]] &&
            "$py" -m pip --version >/dev/null 2>&1; then
            echo "$py"
            return 0
        fi
    done
    die "no Python 3.11 with pip found (tried \$PYTHON, .venv/bin/python, python3.11, python3): the image's python is 3.11"
}

# The runtime dependencies and the build backend from pyproject.toml, one per line (no dev extras).
wheel_requirements() {
    "$1" -c 'import sys, tomllib
p = tomllib.load(open(sys.argv[1], "rb"))
print("\n".join(p["build-system"]["requires"] + p["project"]["dependencies"]))' "$repo_root/pyproject.toml"
}

# The wheelhouse for WHEELS=wheelhouse: downloaded or built on the host, where pip trusts this
# machine's certificates (pip inside the image build does not).
build_wheelhouse() {
    local out="$1" py="$2" tmp="$work/wheelhouse"
    local -a reqs
    mapfile -t reqs < <(wheel_requirements "$py")
    log "wheelhouse: pip wheel of ${#reqs[@]} requirements with $py"
    "$py" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$tmp" "${reqs[@]}" >&2 ||
        die "pip wheel of the runtime dependencies failed"
    rm -rf "$out"
    mv "$tmp" "$out"
}

build_project() {
    local out="$1" wheelhouse="$2" ctx="$work/dynoline-context"
    mkdir -p "$ctx"
    # Exactly what the Dockerfile COPYs, plus the wheelhouse (hard links, no copy).
    tar -C "$repo_root" --exclude=__pycache__ --exclude='*.py[co]' -cf - pyproject.toml README.md \
        workloads controllers | tar -C "$ctx" -xf -
    cp -al "$wheelhouse" "$ctx/wheelhouse"
    base_in_buildah
    log "dynoline: buildah bud (Dockerfile, BASE_IMAGE=$base_ref, WHEELS=wheelhouse)"
    bud --build-arg BASE_IMAGE="$base_ref" --build-arg WHEELS=wheelhouse \
        -f "$repo_root/Dockerfile" -t "$project_ref" "$ctx" >"$work/bud.log" 2>&1 || {
        tail -n 30 "$work/bud.log" >&2
        die "buildah bud of the Dockerfile failed (log above)"
    }
    export_image "$project_ref" "$out"
}

# ------------------------------------------------------------------------------------------------ postgres

build_postgres() {
    local out="$1"
    base_in_buildah
    log "postgres: buildah bud (apt-get install postgresql-15 from the base's mirror)"
    bud --build-arg BASE_IMAGE="$base_ref" -f "$images_src/postgres/Containerfile" -t "$postgres_ref" \
        "$images_src/postgres" >"$work/bud-postgres.log" 2>&1 || {
        tail -n 30 "$work/bud-postgres.log" >&2
        die "buildah bud of the PostgreSQL image failed (log above)"
    }
    export_image "$postgres_ref" "$out"
}

# ------------------------------------------------------------------------------------------------ main

# Runs build function $2 into archive $3 unless it exists; $1 names it in the log.
cached() {
    local name="$1" fn="$2" out="$3" start=$SECONDS
    if [[ -s "$out" ]]; then
        log "$name: cached $(basename "$out") ($(size_of "$out"))"
        return 0
    fi
    "$fn" "$out"
    log "$name: built $(basename "$out") ($(size_of "$out")) in $((SECONDS - start)) s"
    prune_older "$out"
}

cached base build_base "$base_tar"

pause_tar="$cache/dynoline-pause-$(key_of "$images_src/pause.c" "$(declare -f build_pause docker_archive)").tar"
cached dynoline-pause:local build_pause "$pause_tar"

python_bin="$(wheel_python)"
wheels_key="$(key_of "$repo_root/pyproject.toml" "$("$python_bin" -c 'import sys; print(sys.version.split()[0])')")"
wheelhouse="$cache/wheelhouse-$wheels_key"
if [[ -d "$wheelhouse" ]]; then
    log "wheelhouse: cached $(basename "$wheelhouse")"
else
    start=$SECONDS
    build_wheelhouse "$wheelhouse" "$python_bin"
    log "wheelhouse: $(find "$wheelhouse" -name '*.whl' | wc -l) wheels in $((SECONDS - start)) s"
    prune_older "$wheelhouse"
fi
project_key="$(key_of "$repo_root/Dockerfile" "$repo_root/pyproject.toml" "$repo_root/README.md" \
    "$(tree_key workloads controllers)" "$base_key" "$wheels_key" "$(declare -f build_project)")"
project_tar="$cache/dynoline-e2e-$project_key.tar"
build_project_here() { build_project "$1" "$wheelhouse"; }
cached dynoline:e2e build_project_here "$project_tar"

postgres_tar="$cache/dynoline-e2e-postgres-$(key_of "$images_src/postgres/Containerfile" \
    "$images_src/postgres/entrypoint.sh" "$base_key" "$(declare -f build_postgres)").tar"
cached dynoline-e2e-postgres:15 build_postgres "$postgres_tar"

if [[ $do_import == 1 ]]; then
    for archive in "$pause_tar" "$project_tar" "$postgres_tar"; do
        start=$SECONDS
        ctr --address "$address" --namespace k8s.io images import "$archive" >"$work/import.log" 2>&1 ||
            die "ctr images import $(basename "$archive") into $address failed: $(tail -n 1 "$work/import.log")"
        log "imported $(basename "$archive") into $address (k8s.io) in $((SECONDS - start)) s"
    done
fi
log "done: $pause_ref $project_ref $postgres_ref"

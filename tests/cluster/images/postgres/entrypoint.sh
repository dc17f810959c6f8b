#!/bin/bash
# Entry point of docker.io/library/dynoline-e2e-postgres:15: Debian's PostgreSQL 15 with the environment
# interface of the official `postgres` image, as far as tests/e2e/manifests/postgres.yaml uses it:
#
#   POSTGRES_PASSWORD  required on first start: the superuser's password (scram-sha-256 over TCP)
#   POSTGRES_USER      the superuser (default postgres)
#   POSTGRES_DB        a database created on first start (default: $POSTGRES_USER)
#   PGDATA             the cluster directory (default /var/lib/postgresql/data); initdb'd when empty
#
# Local-socket connections are trusted (psql through `kubectl exec`); TCP from anywhere needs the
# password. Started as root it makes PGDATA, hands it to postgres and re-executes itself as postgres.
# SIGTERM and SIGINT both mean a fast shutdown (clients are disconnected), so a pod stops in seconds.
# Not supported (the e2e suite does not use them): /docker-entrypoint-initdb.d, POSTGRES_INITDB_ARGS,
# POSTGRES_HOST_AUTH_METHOD, *_FILE secrets.
set -Eeuo pipefail

log() { printf 'postgres-entrypoint: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"

# Anything but `postgres [server options]` (psql, bash, pg_isready ...) runs as given.
if [[ $# -eq 0 || "$1" != postgres ]]; then
    exec "$@"
fi
shift

# Where the server puts its socket and psql looks for it (Debian's built-in default).
socket_dir=/var/run/postgresql

if [[ "$(id -u)" == 0 ]]; then
    mkdir -p "$PGDATA" "$socket_dir"
    chown postgres:postgres "$PGDATA" "$socket_dir"
    chmod 700 "$PGDATA"
    chmod 3777 "$socket_dir"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
fi

# The image has it; a runtime that mounts an empty tmpfs on /run (plain `ctr run`) hides it.
[[ -d "$socket_dir" && -w "$socket_dir" ]] ||
    die "$socket_dir is missing or not writable for $(id -un) (an empty tmpfs on /run? start as root, or mount one there)"

# A fresh emptyDir is root-owned with mode 1777 or 0777: postgres can make PGDATA below it.
mkdir -p "$PGDATA" || die "cannot create PGDATA=$PGDATA as $(id -un)"
chmod 700 "$PGDATA" || die "PGDATA=$PGDATA is not owned by $(id -un)"

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    [[ -n "${POSTGRES_PASSWORD:-}" ]] || die "PGDATA=$PGDATA is empty and POSTGRES_PASSWORD is not set"
    log "initialising $PGDATA (superuser $POSTGRES_USER, database $POSTGRES_DB)"
    # The password reaches initdb through a pipe, never argv or a file.
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 \
        -D "$PGDATA" >/dev/null
    # initdb's host lines cover loopback only; the pod network connects from anywhere.
    printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    # A socket-only server for the set-up, so no client sees a half-initialised database over TCP.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w -s start
    if [[ "$POSTGRES_DB" != postgres ]]; then
        psql -X -q -v ON_ERROR_STOP=1 --username="$POSTGRES_USER" --dbname=postgres \
            --set=db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
    pg_ctl -D "$PGDATA" -m fast -w -s stop
    log "initialised"
fi

# postgres stays a child so that SIGTERM (what a kubelet or `ctr task kill` sends) can be turned into
# SIGINT, PostgreSQL's fast shutdown; plain SIGTERM would wait for every client to disconnect.
postgres -D "$PGDATA" -c listen_addresses='*' "$@" &
server=$!
trap 'kill -INT "$server" 2>/dev/null || true' TERM INT
# `wait` returns early when a trapped signal arrives: wait until the server has really exited, then
# once more for its own exit status (bash keeps it), which becomes ours.
while kill -0 "$server" 2>/dev/null; do
    wait "$server" || true
done
wait "$server"

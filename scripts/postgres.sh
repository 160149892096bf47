#!/usr/bin/env bash
# Installs (if needed) and starts a throwaway PostgreSQL server for the tests, on 127.0.0.1
# only, and prints its admin URL on stdout (everything else goes to stderr).
#
#   export OCPP_TEST_POSTGRES_URL="$(bash scripts/postgres.sh)"
#
# PGPORT (default 55432) and PGDATA_DIR (default /tmp/ocpp-rs-pg-$PGPORT) can be overridden.
# A server already answering on the port is reused. Stop it with:
#   bash scripts/postgres.sh stop
set -euo pipefail
port="${PGPORT:-55432}"
data="${PGDATA_DIR:-/tmp/ocpp-rs-pg-$port}"
user=ocpp
url="postgres://$user@127.0.0.1:$port/postgres"
log() { echo "postgres.sh: $*" >&2; }

find_bin() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
    done
    if command -v pg_ctl >/dev/null && command -v initdb >/dev/null; then
        dirname "$(command -v pg_ctl)"; return 0
    fi
    return 1
}

bin="$(find_bin || true)"
if [ -z "$bin" ]; then
    log "no PostgreSQL server binaries; installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get install -y -q postgresql >&2 || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q postgresql >&2; }
    # Debian starts a cluster on 5432 as a service; ours is separate and on its own port.
    bin="$(find_bin)"
fi

# PostgreSQL refuses to run as root: run it as the `postgres` user when we are root.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

if [ "${1:-}" = "stop" ]; then
    as_pg "$bin/pg_ctl" -D "$data" stop -m fast >&2 || true
    exit 0
fi

# The test databases (`ocpp_<test>_<pid>`, examples/tests/support/postgres.rs, and the cluster
# benchmark's `ocpp_cluster_bench_<pid>`) of earlier runs are dropped by the test command before
# it starts (`bash scripts/postgres.sh drop-test-databases`), so runs on one server do not fill
# the disk.
if [ "${1:-}" = "drop-test-databases" ]; then
    for db in $("$bin/psql" "$url" -Atc "SELECT datname FROM pg_database WHERE datname ~ '^ocpp_.*_[0-9]+$'"); do
        "$bin/psql" "$url" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >&2
    done
    exit 0
fi

if "$bin/pg_ctl" --version >/dev/null 2>&1 && [ -f "$data/postmaster.pid" ] \
    && as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "reusing the server running in $data"
    echo "$url"
    exit 0
fi

if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"
    mkdir -p "$data"
    [ "$(id -u)" -eq 0 ] && chown postgres "$data"
    log "initdb in $data"
    as_pg "$bin/initdb" -D "$data" -U "$user" -A trust --no-sync -E UTF8 >/dev/null
fi
log "starting PostgreSQL ($("$bin/postgres" --version)) on 127.0.0.1:$port"
as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start \
    -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >&2
echo "$url"

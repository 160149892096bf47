#!/usr/bin/env bash
# The central system as a cluster on this machine, in one command: PostgreSQL (the record),
# Redis (presence, command routing, the live feed), N central-system nodes and HAProxy in
# front of them.
#
#   bash scripts/cluster.sh [start] [NODES]   # default 3 nodes
#   bash scripts/cluster.sh stop              # stops the nodes, the balancer and Redis
#
#   chargers ──ws──▶ HAProxy 127.0.0.1:9000 (BALANCER_PROCS processes, one port)
#                      │ least connections, /health checks, a dead node taken out
#          ┌───────────┼───────────┐
#          ▼           ▼           ▼
#        node1       node2       node3      central-system --redis-url --node-id
#     ws :9101     ws :9102     ws :9103    (dashboard and API on :8101, :8102, :8103)
#          │  ╲        │        ╱  │
#          │   Redis 127.0.0.1:56379 (presence leases, ocpp:cmd:<node> streams, events)
#          ▼           ▼           ▼
#        PostgreSQL 127.0.0.1:55432 / ocpp_cluster (chargers, sessions, journal, ids)
#
# Environment: BIN (a central-system binary; default: built here with --release),
# OCPP_PORT (9000), BALANCER_PROCS (2), OCPP_ADMIN_PASSWORD (default: generated at the first
# start and kept in CLUSTER_DIR/admin-password: the account is created once per database),
# CLUSTER_DIR (/tmp/ocpp-rs-cluster: logs, pid files), PER_IP (each node's
# --max-connections-per-ip, 18000: chargers from one address, e.g. a load generator here).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "cluster.sh: $*" >&2; }
dir="${CLUSTER_DIR:-/tmp/ocpp-rs-cluster}"
port="${OCPP_PORT:-9000}"
cmd="${1:-start}"
if [[ "$cmd" =~ ^[0-9]+$ ]]; then nodes="$cmd"; cmd=start; else nodes="${2:-3}"; fi

stop_nodes() {
    local f
    for f in "$dir"/node*.pid; do
        [ -f "$f" ] || continue
        kill "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
}

if [ "$cmd" = "stop" ]; then
    stop_nodes
    bash scripts/balancer.sh stop "127.0.0.1:$port"
    bash scripts/redis.sh stop
    log "stopped (PostgreSQL stays: bash scripts/postgres.sh stop)"
    exit 0
fi
[ "$cmd" = "start" ] || { log "usage: cluster.sh [start] [NODES] | stop"; exit 2; }

mkdir -p "$dir"
stop_nodes
pg="$(bash scripts/postgres.sh)"
psql -q "$pg" -c "CREATE DATABASE ocpp_cluster" 2>/dev/null || true
db="${pg%/*}/ocpp_cluster"
redis="$(bash scripts/redis.sh)"
bin="${BIN:-}"
if [ -z "$bin" ]; then
    log "building central-system (release)"
    cargo build -q --release -p ocpp-examples --bin central-system >&2
    bin="${CARGO_TARGET_DIR:-target}/release/central-system"
fi
# The admin account is created once, by the first start on the database: keep its password.
if [ -n "${OCPP_ADMIN_PASSWORD:-}" ]; then
    printf '%s\n' "$OCPP_ADMIN_PASSWORD" >"$dir/admin-password"
elif [ ! -s "$dir/admin-password" ]; then
    head -c 12 /dev/urandom | base64 | tr -d '/+=' >"$dir/admin-password"
fi
chmod 600 "$dir/admin-password"

backends=()
for i in $(seq 1 "$nodes"); do
    ocpp="127.0.0.1:$((port + 100 + i))"
    http="127.0.0.1:$((8100 + i))"
    # HAProxy sends each charger's address ahead of its connection (PROXY protocol v2), so
    # the per-address limit counts chargers' addresses, not the balancer's. A load generator
    # on this machine is one address: the limit stays the node's limit here. Below the
    # 20,000 open files of a process.
    "$bin" --database-url "$db" --redis-url "$redis" --node-id "node$i" \
        --ocpp-listen "$ocpp" --http-listen "$http" \
        --proxy-protocol 127.0.0.1 \
        --max-connections 18000 --max-connections-per-ip "${PER_IP:-18000}" \
        --admin-password-file "$dir/admin-password" \
        >"$dir/node$i.log" 2>&1 &
    echo $! >"$dir/node$i.pid"
    backends+=("$ocpp=$http")
    # The first node migrates the database alone.
    if [ "$i" = 1 ]; then
        for _ in $(seq 1 100); do
            curl -sf "http://$http/health" >/dev/null 2>&1 && break
            sleep 0.2
        done
    fi
done
for b in "${backends[@]}"; do
    http="${b#*=}"
    ok=
    for _ in $(seq 1 150); do
        if curl -sf "http://$http/health" >/dev/null 2>&1; then ok=1; break; fi
        sleep 0.2
    done
    [ -n "$ok" ] || { log "node on $http did not come up: see $dir/"; exit 1; }
done
ws="$(BALANCER_SEND_PROXY=1 bash scripts/balancer.sh start "127.0.0.1:$port" "${BALANCER_PROCS:-2}" "${backends[@]}")"

cat <<INFO
ocpp-rs cluster: $nodes nodes behind HAProxy, PostgreSQL $db, Redis $redis
  chargers connect to:  $ws/<identity>
  dashboards (any node shows every charger; commands reach the node holding the socket):
INFO
for i in $(seq 1 "$nodes"); do
    echo "    node$i  http://127.0.0.1:$((8100 + i))/"
done
cat <<INFO
  sign in as admin, password in $dir/admin-password
  try:   cargo run --release -p ocpp-examples --bin charger-sim -- --url $ws --count 100 --scenario charge
  logs:  $dir/node*.log      stop: bash scripts/cluster.sh stop
INFO

#!/usr/bin/env bash
# Installs (if needed) and starts a throwaway Redis server for the cluster tests and the
# cluster command, on 127.0.0.1 only, without persistence, and prints its URL on stdout
# (everything else goes to stderr).
#
#   export OCPP_TEST_REDIS_URL="$(bash scripts/redis.sh)"
#
# REDIS_PORT (default 56379) and REDIS_DIR (default /tmp/ocpp-rs-redis-$REDIS_PORT) can be
# overridden. A server already answering on the port is reused. Stop it with:
#   bash scripts/redis.sh stop
set -euo pipefail
port="${REDIS_PORT:-56379}"
dir="${REDIS_DIR:-/tmp/ocpp-rs-redis-$port}"
url="redis://127.0.0.1:$port"
log() { echo "redis.sh: $*" >&2; }

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    log "no redis-server; installing Debian's redis-server package"
    export DEBIAN_FRONTEND=noninteractive
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get install -y -q redis-server >&2 || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q redis-server >&2; }
    # Debian starts a server on 6379 as a service; ours is separate and on its own port.
fi

if [ "${1:-}" = "stop" ]; then
    redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >&2 2>/dev/null || true
    exit 0
fi

if redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then
    log "reusing the server on 127.0.0.1:$port"
    echo "$url"
    exit 0
fi

mkdir -p "$dir"
log "starting $(redis-server --version | cut -d' ' -f1-3) on 127.0.0.1:$port"
# maxclients: every node holds a few connections; the open-file limit bounds it anyway.
redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --appendonly no \
    --daemonize yes --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" \
    --maxclients 1000 >&2
for _ in $(seq 1 50); do
    if redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then
        echo "$url"
        exit 0
    fi
    sleep 0.1
done
log "Redis did not answer on 127.0.0.1:$port; see $dir/redis.log"
exit 1

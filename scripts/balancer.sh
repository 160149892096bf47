#!/usr/bin/env bash
# Installs (if needed) and runs HAProxy in front of the central-system nodes of a cluster:
# WebSocket connections of chargers spread over the nodes (least connections), each node
# health-checked on its HTTP /health, a dead node taken out within ~2 s, a refused connection
# sent to another node.
#
#   bash scripts/balancer.sh start LISTEN PROCS OCPP_ADDR=HTTP_ADDR [OCPP_ADDR=HTTP_ADDR ...]
#   bash scripts/balancer.sh stop LISTEN
#
# e.g. `bash scripts/balancer.sh start 127.0.0.1:9000 2 127.0.0.1:9101=127.0.0.1:8101 \
# 127.0.0.1:9102=127.0.0.1:8102` and chargers connect to ws://127.0.0.1:9000/ocpp/<id>.
#
# One process may open at most `ulimit -Hn` files (20,000 here) and every proxied connection
# takes two (the charger's and the node's): PROCS separate HAProxy processes bind the same
# port (SO_REUSEPORT, HAProxy's default on Linux) and the kernel spreads new connections over
# them; each is limited to BALANCER_MAXCONN connections (default 9,000: 18,000 descriptors plus
# its listeners and checks). PROCS x BALANCER_MAXCONN is the balancer's capacity.
# BALANCER_SEND_PROXY=1 makes HAProxy send each connection's client address ahead of it (PROXY
# protocol v2, `send-proxy-v2`): start the nodes with `--proxy-protocol <balancer address>`, so
# that --max-connections-per-ip and the logs see the chargers' addresses, not the balancer's.
# The configuration and logs are in /tmp/ocpp-rs-haproxy-<port>/. Prints the ws:// URL.
set -euo pipefail
log() { echo "balancer.sh: $*" >&2; }
cmd="${1:-}"
listen="${2:-}"
[ -n "$cmd" ] && [ -n "$listen" ] || { log "usage: balancer.sh start|stop LISTEN [PROCS NODES...]"; exit 2; }
port="${listen##*:}"
dir="/tmp/ocpp-rs-haproxy-$port"

stop() {
    local f
    for f in "$dir"/haproxy.*.pid; do
        [ -f "$f" ] || continue
        kill "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
}

if [ "$cmd" = "stop" ]; then
    stop
    exit 0
fi
[ "$cmd" = "start" ] || { log "unknown command $cmd"; exit 2; }
procs="${3:-2}"
shift 3
[ "$#" -ge 1 ] || { log "give at least one node OCPP_ADDR=HTTP_ADDR"; exit 2; }

if ! command -v haproxy >/dev/null; then
    log "no haproxy; installing Debian's haproxy package"
    export DEBIAN_FRONTEND=noninteractive
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get install -y -q haproxy >&2 || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q haproxy >&2; }
fi

maxconn="${BALANCER_MAXCONN:-9000}"
send_proxy=""
[ "${BALANCER_SEND_PROXY:-0}" = "1" ] && send_proxy=" send-proxy-v2"
mkdir -p "$dir"
stop
cfg="$dir/haproxy.cfg"
{
    cat <<CFG
global
    maxconn $maxconn
    # Two descriptors per proxied connection, plus listeners and health checks.
    fd-hard-limit $(( maxconn * 2 + 500 ))
    nbthread 1

defaults
    mode tcp
    timeout connect 2s
    timeout client 10m
    timeout server 10m
    # A WebSocket, once upgraded, is a tunnel: chargers ping at most every few minutes.
    timeout tunnel 1h
    timeout client-fin 5s
    retries 3
    # A connection refused by a node (killed, restarting) goes to another node.
    option redispatch 1

frontend ocpp
    bind $listen
    default_backend nodes

backend nodes
    balance leastconn
    option httpchk
    http-check send meth GET uri /health ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    default-server inter 1s fall 2 rise 2$send_proxy
CFG
    i=0
    for node in "$@"; do
        i=$((i + 1))
        ocpp="${node%%=*}"
        http="${node#*=}"
        echo "    server node$i $ocpp check addr ${http%:*} port ${http##*:}"
    done
} >"$cfg"
haproxy -c -q -f "$cfg" >&2
for n in $(seq 1 "$procs"); do
    haproxy -D -f "$cfg" -p "$dir/haproxy.$n.pid" >>"$dir/haproxy.log" 2>&1
done
log "HAProxy ($(haproxy -v | head -1 | cut -d' ' -f3)): $procs processes on $listen, $# nodes, at most $maxconn connections each"
echo "ws://$listen/ocpp"

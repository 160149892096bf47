#!/usr/bin/env bash
# Installs and starts what the tests need beyond the Rust toolchain, then prints `export`
# lines for the test command to eval:
#   - PostgreSQL (Debian package if missing), started on 127.0.0.1:55432 by scripts/postgres.sh
#   - Redis (Debian's redis-server), started on 127.0.0.1:56379 by scripts/redis.sh, and
#     HAProxy (Debian's haproxy): the cluster test (examples/tests/cluster.rs)
#   - Debian's chromium and chromium-driver (the dashboard test)
#   - the interop peers (scripts/interop-setup.sh: Python `ocpp` in a venv, `ocpp-rpc` from npm)
# A part that cannot be installed is reported loudly on stderr; its tests then say SKIPPED.
set -uo pipefail
cd "$(dirname "$0")/.."
warn() { printf '\n*** %s ***\n\n' "$*" >&2; }
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q "$@" >&2 || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q "$@" >&2; }
}

if url="$(bash scripts/postgres.sh)"; then
    echo "export OCPP_TEST_POSTGRES_URL='$url'"
else
    warn "PostgreSQL could not be installed or started: the PostgreSQL end-to-end tests will be SKIPPED"
fi

if url="$(bash scripts/redis.sh)"; then
    echo "export OCPP_TEST_REDIS_URL='$url'"
else
    warn "Redis could not be installed or started: the cluster test will be SKIPPED"
fi
if ! command -v haproxy >/dev/null; then
    echo "install-test-deps: installing Debian's haproxy" >&2
    apt_install haproxy || warn "haproxy could not be installed: the cluster test will FAIL"
fi

if ! { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }; then
    echo "install-test-deps: installing Debian's chromium and chromium-driver" >&2
    apt_install chromium chromium-driver || warn "chromium could not be installed: the dashboard test will be SKIPPED"
fi

if [ -f scripts/interop-setup.sh ]; then
    if out="$(bash scripts/interop-setup.sh)"; then
        printf '%s\n' "$out" | grep -E '^export ' || true
    else
        warn "the interop peers could not be installed: the interop tests will be SKIPPED"
    fi
fi

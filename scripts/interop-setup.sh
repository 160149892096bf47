#!/usr/bin/env bash
# Installs the interop peers that examples/tests/interop.rs runs against:
#   - the Python `ocpp` 2.1.0 package (mobilityhouse) with `websockets`, in a venv
#     (default target/interop/venv, or $OCPP_INTEROP_VENV), pinned by interop/python/requirements.txt;
#   - `ocpp-rpc` 2.2.1 from npm in interop/node/ (exact versions pinned by package-lock.json).
# Idempotent: a second run checks what is installed and returns in a tenth of a second.
# Prints the environment variables the tests read, as `export NAME=VALUE` lines on stdout
# (everything else goes to stderr), so `eval "$(bash scripts/interop-setup.sh)"` works.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${OCPP_INTEROP_VENV:-$root/target/interop/venv}"
node_dir="$root/interop/node"
requirements="$root/interop/python/requirements.txt"
log() { printf 'interop-setup: %s\n' "$*" >&2; }

# ---- Python ocpp 2.1.0 in a venv, exactly interop/python/requirements.txt
# (a copy of the requirements installed is kept in the venv: a changed file reinstalls)
py_ok() {
  [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$venv/interop-requirements.txt"
}
if py_ok; then
  log "python ocpp 2.1.0 already in $venv"
else
  log "creating venv $venv from interop/python/requirements.txt"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
  "$venv/bin/python" -c 'import ocpp.v16, ocpp.v201, ocpp.v21, websockets' \
    || { log "python peer did not install"; exit 1; }
  cp "$requirements" "$venv/interop-requirements.txt"
fi

# ---- ocpp-rpc 2.2.1 from npm (lock file committed, node_modules not)
node_ok() {
  [ -f "$node_dir/node_modules/ocpp-rpc/package.json" ] && node -e '
    const v = require(process.argv[1]).version;
    process.exit(v === "2.2.1" ? 0 : 1);' "$node_dir/node_modules/ocpp-rpc/package.json"
}
if node_ok; then
  log "ocpp-rpc 2.2.1 already in $node_dir/node_modules"
else
  log "installing ocpp-rpc 2.2.1 (npm ci) in $node_dir"
  if [ -f "$node_dir/package-lock.json" ]; then
    (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  else
    (cd "$node_dir" && npm install --no-audit --no-fund --loglevel=error >&2)
  fi
  node_ok || { log "ocpp-rpc did not install"; exit 1; }
fi

mkdir -p "$root/target/interop/coverage"
printf 'export OCPP_INTEROP_PYTHON=%q\n' "$venv/bin/python"
printf 'export OCPP_INTEROP_NODE=%q\n' "$(command -v node)"
printf 'export OCPP_INTEROP_NODE_DIR=%q\n' "$node_dir"

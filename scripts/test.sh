#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this script).
# Installs what the tests need (PostgreSQL, Chromium, the interop peers), then: formatting,
# lints, every test of the workspace (end-to-end and interop included), fuzz smoke runs, docs
# and packaging.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# A from-scratch build gains nothing from incremental compilation, and its caches double the
# size of the target directory.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
start=$(date +%s)
step() { printf '\n=== %s (t+%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

step "install and start what the tests need (PostgreSQL, Redis, HAProxy, Chromium, interop peers)"
deps="$(bash scripts/install-test-deps.sh)"
printf '%s\n' "$deps"
eval "$deps"
# In this suite the interop peers must be there: a broken install fails instead of skipping.
export OCPP_INTEROP_REQUIRED=1
# The PostgreSQL test databases of earlier runs on the same server go first (disk).
if [ -n "${OCPP_TEST_POSTGRES_URL:-}" ]; then bash scripts/postgres.sh drop-test-databases; fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "the typed layer builds with each version feature alone"
for v in v16 v201 v21; do
  cargo check --locked -p ocpp-codec --no-default-features --features "$v"
  # ... and so do the library crates' docs (no link to another version's items).
  RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --no-default-features --features "$v" \
    -p ocpp-types -p ocpp-codec -p ocpp-central -p ocpp-charger
done
# ocpp-types names its versions without the embedded schemas or the validator.
if cargo tree --locked -p ocpp-types --no-default-features --features v16 | grep jsonschema; then
  echo "ocpp-types depends on jsonschema" >&2
  exit 1
fi

step "the sans-IO cores build without their I/O features, warning-free"
# As an application that brings its own sockets builds them.
cargo clippy --locked -p ocpp-central -p ocpp-charger --no-default-features \
  --features v16,v201,v21 -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "the offline examples of the library crates run (the binaries cargo test just built)"
examples="${CARGO_TARGET_DIR:-target}/debug/examples"
# expect <exit status> <text the output contains> <command...>
expect() {
  local status=$1 text=$2 out rc=0
  shift 2
  out="$("$@" 2>&1)" || rc=$?
  if [[ $rc != "$status" || $out != *"$text"* ]]; then
    printf '%s: exit %s (expected %s), output:\n%s\nexpected to contain: %s\n' \
      "$*" "$rc" "$status" "$out" "$text" >&2
    exit 1
  fi
}
expect 0 '1.6 Heartbeat invalid: unknown field `extra`' "$examples/messages"
expect 1 '/chargePointVendor: Type -> TypeConstraintViolation' \
  "$examples/validate" 1.6 BootNotification '{"chargePointVendor":42}'
expect 0 'valid OCPP 2.0.1 Heartbeat response' \
  "$examples/validate" 2.0.1 Heartbeat response '{"currentTime":"2025-01-15T09:30:00Z"}'
expect 0 'CALL 1 Heartbeat: V201(' "$examples/decode" 2.0.1 '[2,"1","Heartbeat",{}]'
expect 0 'answer: [4,"19","TypeConstraintViolation","/chargePointModel: 42 is not of type \"string\"",{"pointer":"/chargePointModel"}]' \
  "$examples/decode" 1.6 <<<'[2,"19","BootNotification",{"chargePointVendor":"ACME","chargePointModel":42}]'
expect 0 'CALL:       [2,"boot-1","BootNotification",{' "$examples/encode"

step "schema coverage of the typed messages (written by the differential test above)"
cat "${CARGO_TARGET_DIR:-target}"/tmp/coverage-*.txt

step "interop action coverage (every action exchanged with a real peer over a socket)"
python3 scripts/interop-coverage.py --require 1.6,2.0.1

step "fuzz smoke runs (every cargo-fuzz target, bounded)"
bash scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-20}"

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "cargo package (every library crate, verified as crates.io would build it)"
# Cargo verifies each crate against the others through a local registry overlay, whose
# extracted sources (in $CARGO_HOME/registry/src/-<hash>/) it never refreshes for the same
# name and version: drop ours from earlier runs, or an old copy would be verified against.
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/ocpp-{schemas,types,codec,central,charger}-[0-9]*
cargo package --locked --allow-dirty -p ocpp-schemas -p ocpp-types -p ocpp-codec -p ocpp-central -p ocpp-charger

step "done"

#!/usr/bin/env bash
# Bounded smoke run of every cargo-fuzz target over the committed seed corpus (fuzz/seeds),
# on the stable toolchain (`-s none`: coverage-guided, no sanitizer, which needs nightly), built
# unoptimized (`--dev`: overflow checks and debug assertions on, and a build of ~2 minutes
# instead of ~7 for the optimized one; longer runs belong in `cargo fuzz run -O`).
# Every target `cargo fuzz list` names runs over its own seeds (fuzz/seeds/<target>): the codec
# targets (frame_decode, rpc_endpoint, typed_decode) and the stateful ones that drive a whole
# central session (central_session) and a whole charging station (charger_station).
# Usage: scripts/fuzz-smoke.sh [SECONDS_PER_TARGET]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-20}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (once)"
  cargo install cargo-fuzz --locked --quiet
fi
cargo fuzz build -s none --dev
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for target in $(cargo fuzz list); do
  mkdir -p "$work/$target"
  seeds="seeds/$target"
  [ -d "$seeds" ] || seeds="seeds/common"
  echo "fuzz smoke: $target for ${secs}s (seeds: $seeds)"
  mkdir -p "$work/artifacts/$target"
  status=0
  cargo fuzz run -s none --dev "$target" "$work/$target" "$seeds" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/$target/" >"$work/$target.log" 2>&1 || status=$?
  grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "$work/$target.log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$work/$target.log" >&2
    mkdir -p artifacts/"$target" && cp -r "$work/artifacts/$target/." artifacts/"$target"/ || true
    echo "fuzz smoke: $target failed (exit $status); the input is in fuzz/artifacts/$target" >&2
    exit 1
  fi
done

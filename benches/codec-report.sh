#!/usr/bin/env bash
# The codec benchmark (BENCHMARKS.md section 2) in one run: the Python `ocpp` package, the
# Rust codec benchmark, the Python package again, the callgrind instruction counts (when
# valgrind is installed), then the tables with the ratios.
# Usage: benches/codec-report.sh [criterion arguments; default: short runs]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
target="${CARGO_TARGET_DIR:-$here/../target}"
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--warm-up-time 1 --measurement-time 3)
cargo bench -p ocpp-benches --bench codec --no-run
"$here/python/run.sh" 0.3 | tee "$target/codec-python-1.tsv"
cargo bench -p ocpp-benches --bench codec -- "${args[@]}"
"$here/python/run.sh" 0.3 | tee "$target/codec-python-2.tsv"
counts=()
if command -v valgrind >/dev/null; then
  "$here/codec-instructions.sh" | tee "$target/codec-instructions.tsv"
  counts=(--instructions "$target/codec-instructions.tsv")
fi
echo
python3 "$here/python/codec_table.py" "${counts[@]}" "$target/criterion" \
  "$target/codec-python-1.tsv" "$target/codec-python-2.tsv"

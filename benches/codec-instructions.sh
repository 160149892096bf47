#!/usr/bin/env bash
# Instructions per message of every codec benchmark operation, counted by callgrind: the
# noise-free cross-check of the timed ratios (BENCHMARKS.md section 2). Each operation runs
# alone (CODEC_COUNT=key/op:N, see benches/benches/codec.rs) N and 2N times; the difference
# divided by N is one message's count, setup excluded.
# Usage: benches/codec-instructions.sh [key ...]   (default: every message; prints TSV)
# CODEC_BENCH_BIN=<path> counts an already built bench binary instead (a copy of another
# commit's, for before/after); CODEC_OPS="strict plain_serde" counts only those operations.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${CODEC_BENCH_BIN:-}"
[ -n "$bin" ] || bin=$(cd "$here/.." && cargo bench -p ocpp-benches --bench codec --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "codec" and m.get("executable"):
        print(m["executable"])')
keys=("$@")
[ ${#keys[@]} -gt 0 ] || keys=(heartbeat_req heartbeat_res v16_meter_values v201_transaction_event v21_notify_report)
read -r -a ops <<<"${CODEC_OPS:-strict lenient_conforming lenient_repairing plain_serde encode plain_serde_encode frame plain_frame}"
count() { # key op n -> instructions
  CODEC_COUNT="$1/$2:$3" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf 'key\top\tinstructions\n'
for key in "${keys[@]}"; do
  case "$key" in
    v21_notify_report) n=20 ;;
    v16_meter_values | v201_transaction_event) n=400 ;;
    *) n=4000 ;;
  esac
  for op in "${ops[@]}"; do
    m=$n
    [ "$op" != lenient_repairing ] || m=$(( (n + 9) / 10 ))
    a=$(count "$key" "$op" "$m")
    b=$(count "$key" "$op" $((2 * m)))
    printf '%s\t%s\t%s\n' "$key" "$op" $(( (b - a) / m ))
  done
done

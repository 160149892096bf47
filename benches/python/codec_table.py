"""Prints the codec benchmark's table (BENCHMARKS.md section 2) from criterion's estimates and
the Python benchmark's output.

Usage: codec_table.py [--instructions TSV] CRITERION_DIR PYTHON_TSV [PYTHON_TSV ...]
With several Python outputs (runs before and after the Rust benchmark), each message takes
the fastest Python median, which favours Python in the ratio. `--instructions` adds the
callgrind counts of benches/codec-instructions.sh.
"""

import csv
import json
import pathlib
import sys

ROWS = [
    ("heartbeat_req", "Heartbeat.req 1.6 `{}`"),
    ("heartbeat_res", "Heartbeat.conf 1.6"),
    ("v16_meter_values", "1.6 MeterValues (8 sampled values)"),
    ("v201_transaction_event", "2.0.1 TransactionEvent (7 sampled values)"),
    ("v21_notify_report", "2.1 NotifyReport (200 entries)"),
]
FUNCS = ["strict", "lenient_conforming", "lenient_repairing", "plain_serde", "encode",
         "plain_serde_encode", "frame", "plain_frame"]


def fmt(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.3g} µs" if ns < 1e5 else f"{ns / 1e3:.0f} µs"
    return f"{ns:.0f} ns"


def median(criterion, key, func):
    path = pathlib.Path(criterion) / f"codec_{key}" / func / "new" / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"]


def main():
    args = sys.argv[1:]
    counts = {}
    if args[0] == "--instructions":
        with open(args[1]) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                counts[(row["key"], row["op"])] = int(row["instructions"])
        args = args[2:]
    criterion, tsvs = args[0], args[1:]
    python = {}
    for tsv in tsvs:
        with open(tsv) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                ns = float(row["median_ns"])
                python[row["key"]] = min(ns, python.get(row["key"], ns))
    print("| message | strict | lenient, conforming | lenient, repairing | plain serde "
          "| strict / plain | encode | plain serde encode | Python `ocpp` | Python / strict |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key, name in ROWS:
        m = {f: median(criterion, key, f) for f in FUNCS}
        py = python.get(key)
        print(f"| {name} | **{fmt(m['strict'])}** | {fmt(m['lenient_conforming'])} "
              f"| {fmt(m['lenient_repairing'])} ({m['lenient_repairing'] / m['strict']:.1f}x) "
              f"| {fmt(m['plain_serde'])} | **{m['strict'] / m['plain_serde']:.2f}** "
              f"| {fmt(m['encode'])} | {fmt(m['plain_serde_encode'])} "
              + (f"| {fmt(py)} | **{py / m['strict']:.0f}x** |" if py else "| - | - |"))
    print()
    print("| message | frame only (ours) | frame only (plain serde) | strict minus frame "
          "| plain minus frame | lenient conforming / strict |")
    print("|---|---|---|---|---|---|")
    for key, name in ROWS:
        m = {f: median(criterion, key, f) for f in FUNCS}
        print(f"| {name} | {fmt(m['frame'])} | {fmt(m['plain_frame'])} "
              f"| {fmt(m['strict'] - m['frame'])} | {fmt(m['plain_serde'] - m['plain_frame'])} "
              f"| {m['lenient_conforming'] / m['strict']:.2f} |")
    if counts:
        instructions(counts)


def instructions(counts):
    print()
    print("| message | strict | lenient, conforming | lenient, repairing | plain serde "
          "| strict / plain | encode | plain serde encode | frame only (ours / plain) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key, name in ROWS:
        c = {f: counts[(key, f)] for f in FUNCS}
        print(f"| {name} | **{c['strict']:,}** | {c['lenient_conforming']:,} "
              f"| {c['lenient_repairing']:,} | {c['plain_serde']:,} "
              f"| **{c['strict'] / c['plain_serde']:.2f}** | {c['encode']:,} "
              f"| {c['plain_serde_encode']:,} | {c['frame']:,} / {c['plain_frame']:,} |")


if __name__ == "__main__":
    main()

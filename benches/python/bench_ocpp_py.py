"""Decode + validate throughput of the Python `ocpp` package (the peer our codec is compared with).

Measures, per message, `ocpp.messages.unpack` (JSON parse + frame) followed by
`_validate_payload` (jsonschema validation, the library's own strict path), on the same
payload files the Rust benchmarks use. Prints one line per payload:
`<name>\t<median ns per message>\t<messages per second>`.

Run: benches/python/run.sh (creates the venv with ocpp==2.1.0).
"""

import json
import pathlib
import statistics
import sys
import time

from ocpp.messages import _validate_payload, unpack

HERE = pathlib.Path(__file__).resolve().parent
PAYLOADS = HERE.parent / "payloads"

CASES = [
    ("Heartbeat 1.6", "1.6", "Heartbeat", "{}"),
    ("MeterValues 1.6 (8 sampled values)", "1.6", "MeterValues", (PAYLOADS / "v16_meter_values.json").read_text()),
    ("TransactionEvent 2.0.1", "2.0.1", "TransactionEvent", (PAYLOADS / "v201_transaction_event.json").read_text()),
    ("NotifyReport 2.1 (200 entries)", "2.1", "NotifyReport", (PAYLOADS / "v21_notify_report.json").read_text()),
]


def run_once(frame, version, n):
    start = time.perf_counter_ns()
    for _ in range(n):
        msg = unpack(frame)
        _validate_payload(msg, version)
    return (time.perf_counter_ns() - start) / n


def main():
    budget_s = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
    for name, version, action, payload in CASES:
        frame = '[2,"19223201","%s",%s]' % (action, payload)
        json.loads(frame)
        # Calibrate the iteration count to the time budget per sample.
        per = run_once(frame, version, 5)
        n = max(5, int(budget_s * 1e9 / per))
        samples = [run_once(frame, version, n) for _ in range(7)]
        med = statistics.median(samples)
        print(f"{name}\t{med:.0f}\t{1e9 / med:.0f}", flush=True)


if __name__ == "__main__":
    main()

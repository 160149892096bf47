"""Decode + validate throughput of the Python `ocpp` package (the peer our codec is compared with).

Measures, per message, `ocpp.messages.unpack` (JSON parse + frame) followed by
`_validate_payload` (jsonschema validation, the library's own strict path) on the whole text
message, built from the same payload files and in the same way as the Rust codec benchmark
(`benches/src/cases.rs`). A CALLRESULT gets the action of its CALL first, as the library's
ChargePoint does before validating.

Prints tab-separated lines, parseable: a header `key  median_ns  messages_per_s  message`, then
one line per message; `key` is the Rust benchmark's (criterion group `codec_<key>`).

Run: benches/python/run.sh [seconds per sample, default 0.5] (creates the venv with ocpp==2.1.0).
"""

import json
import pathlib
import statistics
import sys
import time

from ocpp.messages import CallResult, _validate_payload, unpack

HERE = pathlib.Path(__file__).resolve().parent
PAYLOADS = HERE.parent / "payloads"
ID = "19223201"

# key, message, version, action, CALL (2) or CALLRESULT (3), payload
CASES = [
    ("heartbeat_req", "Heartbeat.req 1.6", "1.6", "Heartbeat", 2, "{}"),
    ("heartbeat_res", "Heartbeat.conf 1.6", "1.6", "Heartbeat", 3,
     '{"currentTime":"2026-11-25T08:30:00.000Z"}'),
    ("v16_meter_values", "MeterValues 1.6 (8 sampled values)", "1.6", "MeterValues", 2,
     (PAYLOADS / "v16_meter_values.json").read_text()),
    ("v201_transaction_event", "TransactionEvent 2.0.1", "2.0.1", "TransactionEvent", 2,
     (PAYLOADS / "v201_transaction_event.json").read_text()),
    ("v21_notify_report", "NotifyReport 2.1 (200 entries)", "2.1", "NotifyReport", 2,
     (PAYLOADS / "v21_notify_report.json").read_text()),
]


def frame(kind, action, payload):
    if kind == 2:
        return '[2,"%s","%s",%s]' % (ID, action, payload)
    return '[3,"%s",%s]' % (ID, payload)


def run_once(text, version, action, n):
    start = time.perf_counter_ns()
    for _ in range(n):
        msg = unpack(text)
        if type(msg) is CallResult:
            msg.action = action
        _validate_payload(msg, version)
    return (time.perf_counter_ns() - start) / n


def main():
    budget_s = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
    print("key\tmedian_ns\tmessages_per_s\tmessage", flush=True)
    for key, name, version, action, kind, payload in CASES:
        text = frame(kind, action, payload)
        json.loads(text)
        # Warm up (the first call loads the schema), then calibrate the iteration count to the
        # time budget per sample.
        run_once(text, version, action, 5)
        per = run_once(text, version, action, 5)
        n = max(5, int(budget_s * 1e9 / per))
        samples = [run_once(text, version, action, n) for _ in range(7)]
        med = statistics.median(samples)
        print(f"{key}\t{med:.0f}\t{1e9 / med:.0f}\t{name}", flush=True)


if __name__ == "__main__":
    main()

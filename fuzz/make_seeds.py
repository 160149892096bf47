#!/usr/bin/env python3
"""Writes the fuzz seed corpus (fuzz/seeds/<target>/) from the official schemas.

For every action of every version, a minimal and a full valid payload (every property set),
as CALL/CALLRESULT frames (frame_decode), as typed-decode inputs (typed_decode: version byte,
action byte, kind byte, payload) and as short RPC endpoint scripts (rpc_endpoint).
Deterministic; re-run after the schemas change: python3 fuzz/make_seeds.py
"""

import hashlib
import re
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent
SCHEMAS = ROOT.parent / "ocpp-schemas" / "schemas"
VERSIONS = [("v16", 0), ("v201", 1), ("v21", 2)]


def instance(node, defs, full):
    if "$ref" in node:
        return instance(defs[node["$ref"].split("/")[-1]], defs, full)
    if "enum" in node:
        return node["enum"][0]
    t = node.get("type")
    if t == "object":
        props = node.get("properties", {})
        keys = props.keys() if full else node.get("required", [])
        return {k: instance(props[k], defs, full) for k in keys if k in props}
    if t == "array":
        n = max(node.get("minItems", 1), 1)
        return [instance(node.get("items", {}), defs, full) for _ in range(n)]
    if t == "string":
        if node.get("format") == "date-time":
            return "2026-11-25T08:30:00.000Z"
        if node.get("format") == "uri":
            return "https://example.com/fw.bin"
        return "x" * min(node.get("maxLength", 8), 8)
    if t == "integer":
        return max(int(node.get("minimum", 1)), 1) if "maximum" not in node or node["maximum"] >= 1 else int(node["maximum"])
    if t == "number":
        return 1.5 if "maximum" not in node or node["maximum"] >= 1.5 else 0
    if t == "boolean":
        return True
    return {}


def actions(folder):
    out = {}
    for path in sorted((SCHEMAS / folder).glob("*.json")):
        stem = path.stem
        if stem.endswith("Response"):
            out.setdefault(stem[: -len("Response")], {})["response"] = path
        elif stem.endswith("Request"):
            out.setdefault(stem[: -len("Request")], {})["request"] = path
        else:
            out.setdefault(stem, {})["request"] = path
    return out


def write(target, data):
    d = ROOT / "seeds" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def main():
    for folder, vbyte in VERSIONS:
        acts = actions(folder)
        # Action::ALL is sorted by wire name, as these are.
        for index, (name, files) in enumerate(sorted(acts.items())):
            for kind, path in files.items():
                schema = json.loads(path.read_text(encoding="utf-8-sig"))
                defs = schema.get("definitions", {})
                for full in (False, True):
                    payload = json.dumps(instance(schema, defs, full), separators=(",", ":"))
                    kbyte = 0 if kind == "request" else 1
                    write("typed_decode", bytes([vbyte, index, kbyte]) + payload.encode())
                    frame = (f'[2,"seed-{index}","{name}",{payload}]' if kind == "request"
                             else f'[3,"seed-{index}",{payload}]')
                    write("frame_decode", frame.encode())
                    if len(frame.encode()) < 256:
                        # rpc_endpoint script: version, then op 0 (handle_text) with the frame,
                        # op 2 (our call), op 3 (answer the peer), op 5 (jump to the deadline).
                        script = bytes([vbyte, 0, len(frame.encode())]) + frame.encode() + bytes([2, 0, 3, 0, 5, 0])
                        write("rpc_endpoint", script)
    stateful_seeds()
    print("seeds written to", ROOT / "seeds")


# ----- the stateful targets (central_session, charger_station) -----
#
# Their input (fuzz_targets/common/mod.rs): a 4-byte header, then operations, each an op byte, a
# length byte and that many parameter bytes; a missing parameter byte reads as 0, the typical
# valid choice. An action is chosen by its index in the version's sorted list of actions the
# sender may send (generated initiator tables in ocpp-types/src/<version>/mod.rs).

TYPES = ROOT.parent / "ocpp-types" / "src"


def directed(folder, charger):
    text = (TYPES / folder / "mod.rs").read_text(encoding="utf-8")
    init = dict(re.findall(r"Action::(\w+) => crate::Initiator::(\w+)", text))
    want = {"ChargingStation", "Either"} if charger else {"CentralSystem", "Either"}
    names = []
    for name in sorted(actions(folder)):
        request = SCHEMAS / folder / (f"{name}.json" if folder == "v16" else f"{name}Request.json")
        if init.get(name) in want and request.exists():
            names.append(name)
    return names


def op(code, params=b""):
    params = bytes(params)
    return bytes([code, len(params)]) + params


def raw(code, text):
    data = text.encode()
    assert len(data) < 256, text
    return op(code, data)


def central_seeds(folder, vbyte):
    ch = directed(folder, charger=True)
    cs = directed(folder, charger=False)
    call = lambda name, *rest: op(0, [ch.index(name), 0, *rest])
    text = lambda t: raw(2, t)
    v16 = folder == "v16"
    boot = call("BootNotification")
    seeds = []
    # Every charger action once, minimal payload, after a boot; and with every value extreme.
    seeds.append(([vbyte, 0, 0, 0], boot + b"".join(op(0, [i]) for i in range(len(ch)))))
    seeds.append(([vbyte, 0, 0, 1], boot + b"".join(
        op(0, [i, 0] + [(7 * k + i) % 256 for k in range(60)]) for i in range(len(ch)))))
    if v16:
        tx = [
            text('[2,"s","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":0,"timestamp":"2025-01-01T00:00:00Z"}]'),
            text('[2,"m","MeterValues",{"connectorId":1,"transactionId":1,"meterValue":[{"timestamp":"2025-01-01T00:01:00Z","sampledValue":[{"value":"79228162514264337593543950335"}]}]}]'),
            text('[2,"m2","MeterValues",{"connectorId":1,"transactionId":1,"meterValue":[{"timestamp":"9999-12-31T23:59:59Z","sampledValue":[{"value":"-5","unit":"kWh"}]}]}]'),
            text('[2,"e","StopTransaction",{"transactionId":1,"meterStop":2147483647,"timestamp":"2025-01-01T00:02:00Z"}]'),
            text('[2,"e","StopTransaction",{"transactionId":1,"meterStop":2147483647,"timestamp":"2025-01-01T00:02:00Z"}]'),
        ]
        many = [text('[2,"s%d","StartTransaction",{"connectorId":%d,"idTag":"T","meterStart":0,"timestamp":"2025-01-01T00:00:00Z"}]' % (k, k)) for k in range(10)]
        status = [text('[2,"n%d","StatusNotification",{"connectorId":%d,"errorCode":"NoError","status":"Charging"}]' % (k, k * 1000)) for k in range(10)]
    else:
        ev = ('[2,"%s","TransactionEvent",{"eventType":"%s","timestamp":"2025-01-01T00:00:00Z","triggerReason":"Trigger",'
              '"seqNo":%d,"transactionInfo":{"transactionId":"%s"}%s}]')
        mv = ',"meterValue":[{"timestamp":"2025-01-01T00:01:00Z","sampledValue":[{"value":7.9e28}]}]'
        tx = [
            text(ev % ("a", "Started", 0, "T1", "")),
            text(ev % ("b", "Updated", 1, "T1", mv)),
            text(ev % ("b2", "Updated", 2000000000, "T1", "")),
            text(ev % ("c", "Updated", 2, "T1", "")),
            text(ev % ("d", "Updated", 2147483647, "T1", "")),
            text(ev % ("d2", "Updated", 4, "T1", "")),
            text(ev % ("e", "Ended", 6, "T1", "")),
        ]
        many = [text(ev % ("s%d" % k, "Started", 0, "T%d" % k, "")) for k in range(10)]
        gaps = [text(ev % ("g%d" % k, "Updated", 2 * k + 1, "T1", "")) for k in range(1, 12)]
        status = [text('[2,"n%d","StatusNotification",{"timestamp":"2025-01-01T00:00:00Z","connectorStatus":"Occupied","evseId":%d,"connectorId":1}]' % (k, k * 1000)) for k in range(10)]
        seeds.append(([vbyte, 0x15, 0, 0], boot + tx[0] + b"".join(gaps)))
    seeds.append(([vbyte, 0, 0, 0], boot + b"".join(tx) + op(3, [10]) + b"".join(tx)))
    seeds.append(([vbyte, 0x15, 4, 0], boot + b"".join(many) + b"".join(status)))
    seeds.append(([vbyte, 0, 0, 0], b"".join(tx) + boot + b"".join(tx)))
    # Held requests, repeated ids, too many unanswered calls, answers out of order.
    rep = op(0, [ch.index("Heartbeat"), 200])
    seeds.append(([vbyte, 0, 8, 0], boot + rep * 3 + op(7, [0, 1]) + rep + op(8, [0]) + rep))
    seeds.append(([vbyte, 0, 8, 0], boot + call("Heartbeat") * 20 + op(7, [0]) + op(7, [3, 2])))
    # Pending and rejected boots, calls before boot, triggered messages.
    seeds.append(([vbyte, 0, 0, 1], op(0, [ch.index("BootNotification"), 0, 1]) + call("Heartbeat") + op(5, [0]) + op(6, [0])))
    seeds.append(([vbyte, 0, 0, 0], call("Heartbeat") + call("StatusNotification") + boot))
    # Central calls and the charger's answers: valid, error, garbage, late, after the timeout.
    seeds.append(([vbyte, 0, 0, 0], boot + b"".join(
        op(5, [k]) + op(5, [k, 1, 1, 1]) + op(6, [k % 8]) + op(3, [7]) + op(6, [0xC0 | (k % 8)])
        for k in range(len(cs)))))
    seeds.append(([vbyte, 0, 0, 0], boot + op(5, [0]) + op(9, [0]) + call("Heartbeat") + op(6)))
    seeds.append(([vbyte, 0, 0, 0], boot + text('[2,"x","Heartbeat",{}') + text('[2,"x","Nope",{}]') + text('[3,"x",{}]') + text('[2,1,"Heartbeat",{}]')))
    for header, body in seeds:
        write("central_session", bytes(header) + body)


def charger_seeds(folder, vbyte):
    cs = directed(folder, charger=False)
    v16 = folder == "v16"
    call = lambda name, *rest: op(0, [cs.index(name), 0, *rest])
    text = lambda t: raw(7, t)
    plug, token = op(6, [1, 0]), op(6, [1, 3, 1, 0])
    seeds = []
    # Every central action once, minimal and with extreme values (long lists: array byte 240).
    seeds.append(([vbyte, 0, 0, 0], b"".join(op(0, [i]) for i in range(len(cs)))))
    seeds.append(([vbyte, 1, 0, 0], plug + token + op(3, [9]) + b"".join(
        op(0, [i, 0] + [(11 * k + i) % 256 for k in range(60)]) for i in range(len(cs)))))
    for first in range(0, len(cs), 8):
        seeds.append(([vbyte, 0, 0, 0], b"".join(
            op(0, [i, 0] + [240] * 40) for i in range(first, min(first + 8, len(cs)))) + op(3, [11])))
    # A transaction through disconnects, restarts, rejections and long silences.
    seeds.append(([vbyte, 0, 0, 0], plug + token + op(3, [9]) + op(5) + op(3, [13]) + op(5) + op(3, [9]) + op(9, [1]) + op(6, [1, 2])))
    seeds.append(([vbyte, 1, 2, 0], op(2, [5, 1, 0, 3]) + op(4) + op(2, [5, 0, 6, 9]) + plug + token + op(2, [0]) * 6 + op(3, [15])))
    seeds.append(([vbyte, 0, 2, 0], op(2, [5, 1]) + call("Reset") * 20 + op(4) + op(2, [0]) + call("Reset")))
    seeds.append(([vbyte, 0, 2, 0], op(2, [2]) + op(4) + op(2, [3]) + op(4) + op(2, [6]) + op(4) + op(2, [7]) + op(3, [15])))
    if v16:
        for key, value in [("HeartbeatInterval", "0"), ("HeartbeatInterval", "-5"), ("MeterValueSampleInterval", "1"),
                           ("ClockAlignedDataInterval", "1"), ("TransactionMessageRetryInterval", "0"),
                           ("TransactionMessageAttempts", "2147483647"), ("HeartbeatInterval", "99999999999999999999")]:
            seeds.append(([vbyte, 0, 0, 0], text('[2,"c","ChangeConfiguration",{"key":"%s","value":"%s"}]' % (key, value)) + plug + token + op(5) + op(3, [14]) + op(5)))
        seeds.append(([vbyte, 0, 0, 0], text('[2,"r","RemoteStartTransaction",{"connectorId":2147483647,"idTag":"T"}]') + text('[2,"t","TriggerMessage",{"requestedMessage":"MeterValues","connectorId":-5}]')))
    else:
        for comp, var, value in [("HeartbeatCtrlr", "Interval", "0"), ("SampledDataCtrlr", "TxUpdatedInterval", "1"),
                                 ("AlignedDataCtrlr", "Interval", "1"), ("OCPPCommCtrlr", "MessageAttemptInterval", "0"),
                                 ("OCPPCommCtrlr", "MessageAttempts", "2147483647"), ("HeartbeatCtrlr", "Interval", "-5")]:
            seeds.append(([vbyte, 0, 0, 0], text('[2,"c","SetVariables",{"setVariableData":[{"attributeValue":"%s","component":{"name":"%s"},"variable":{"name":"%s"}}]}]' % (value, comp, var)) + plug + token + op(5) + op(3, [14]) + op(5)))
        seeds.append(([vbyte, 0, 0, 0], text('[2,"r","RequestStartTransaction",{"evseId":2147483647,"remoteStartId":2147483647,"idToken":{"idToken":"T","type":"ISO14443"}}]') + text('[2,"b","GetBaseReport",{"requestId":-5,"reportBase":"FullInventory"}]') * 3))
    for header, body in seeds:
        write("charger_station", bytes(header) + body)


def stateful_seeds():
    for folder, vbyte in VERSIONS:
        central_seeds(folder, vbyte)
        charger_seeds(folder, vbyte)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the fuzz seed corpus (fuzz/seeds/<target>/) from the official schemas.

For every action of every version, a minimal and a full valid payload (every property set),
as CALL/CALLRESULT frames (frame_decode), as typed-decode inputs (typed_decode: version byte,
action byte, kind byte, payload) and as short RPC endpoint scripts (rpc_endpoint).
Deterministic; re-run after the schemas change: python3 fuzz/make_seeds.py
"""

import hashlib
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
    print("seeds written to", ROOT / "seeds")


if __name__ == "__main__":
    main()

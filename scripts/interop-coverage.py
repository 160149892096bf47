#!/usr/bin/env python3
"""Action coverage of the interop tests (examples/tests/interop.rs), per OCPP version.

Every peer script appends one JSON line per CALL that crossed a real socket and got an
answer: {"peer", "role", "version", "action", "direction", "answer"} to
target/interop/coverage/*.jsonl. This sums them up: for each version, which actions were
exchanged in each direction the specification allows (charger -> central, central -> charger),
which of them only ever got a CALLERROR, and which were not exchanged at all.

The actions of a version are the schema files in ocpp-schemas/schemas/<version>/; who sends
each one comes from the generated ocpp-types (`Action::X => crate::Initiator::Y`).

    python3 scripts/interop-coverage.py [--dir DIR] [--by-peer] [--require 1.6,2.0.1]

--require fails (exit 1) when an action-direction of the named versions was not exchanged.
Standard library only.
"""

import argparse
import collections
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
VERSIONS = [("1.6", "v16"), ("2.0.1", "v201"), ("2.1", "v21")]
CS, CSMS = "cs_to_csms", "csms_to_cs"
ARROW = {CS: "charger -> central", CSMS: "central -> charger"}


def spec_actions(folder):
    """{action: set of directions} for one version."""
    names = set()
    for path in (ROOT / "ocpp-schemas" / "schemas" / folder).glob("*.json"):
        stem = path.stem
        if stem.endswith("Response"):
            continue
        names.add(stem[: -len("Request")] if stem.endswith("Request") else stem)
    source = (ROOT / "ocpp-types" / "src" / folder / "mod.rs").read_text(encoding="utf-8")
    initiators = dict(re.findall(r"Action::(\w+) => crate::Initiator::(\w+),", source))
    out = {}
    for name in sorted(names):
        who = initiators.get(name)
        if who == "ChargingStation":
            out[name] = {CS}
        elif who == "CentralSystem":
            out[name] = {CSMS}
        else:  # Either (DataTransfer), or unknown: both
            out[name] = {CS, CSMS}
    return out


def who(line):
    """Who sent the CALL, in words."""
    ours = "our central" if line["role"] == "charge_point" else "our charger"
    theirs = f'{line["peer"]} {"charge point" if line["role"] == "charge_point" else "central"}'
    sender_is_peer = (line["direction"] == CS) == (line["role"] == "charge_point")
    return f"{theirs} -> {ours}" if sender_is_peer else f"{ours} -> {theirs}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default=str(ROOT / "target" / "interop" / "coverage"))
    p.add_argument("--by-peer", action="store_true", help="list who exchanged each action")
    p.add_argument("--require", default="", help="comma-separated versions that must be complete")
    args = p.parse_args()

    files = sorted(pathlib.Path(args.dir).glob("*.jsonl"))
    if not files:
        print(f"no coverage files in {args.dir}: run the interop tests first "
              "(cargo test -p ocpp-examples --test interop, with the peers installed)")
        return 1 if args.require else 0
    # (version, action, direction) -> {"result": n, "errors": Counter, "who": set}
    seen = collections.defaultdict(
        lambda: {"result": 0, "errors": collections.Counter(), "who": collections.defaultdict(set)})
    for f in files:
        for raw in f.read_text(encoding="utf-8").splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            key = (line["version"], line["action"], line["direction"])
            entry = seen[key]
            answer = line["answer"].split(":", 1)[-1]
            if line["answer"] == "result":
                entry["result"] += 1
            else:
                entry["errors"][answer] += 1
            entry["who"][who(line)].add(answer)

    print(f"interop action coverage ({len(files)} files in {args.dir})")
    required = {v.strip() for v in args.require.split(",") if v.strip()}
    missing_required = []
    for version, folder in VERSIONS:
        spec = spec_actions(folder)
        sends = {a for a in spec if not (ROOT / "ocpp-schemas" / "schemas" / folder / f"{a}Response.json").exists()}
        pairs = [(a, d) for a, ds in spec.items() for d in sorted(ds)]
        done = [(a, d) for a, d in pairs if (version, a, d) in seen]
        answered = [(a, d) for a, d in done if seen[(version, a, d)]["result"]]
        print(f"\nOCPP {version}: {len(spec)} actions, {len(pairs)} action-directions; "
              f"exchanged {len(done)}/{len(pairs)} "
              f"({len(answered)} with a CALLRESULT, {len(done) - len(answered)} only with CALLERROR)")
        for direction in (CS, CSMS):
            names = [a for a, d in pairs if d == direction]
            ok = [a for a in names if (version, a, direction) in seen and seen[(version, a, direction)]["result"]]
            err = [a for a in names if (version, a, direction) in seen and not seen[(version, a, direction)]["result"]]
            gone = [a for a in names if (version, a, direction) not in seen]
            print(f"  {ARROW[direction]}: {len(ok) + len(err)}/{len(names)} exchanged")
            print(f"    answered: {', '.join(ok) if ok else '-'}")
            if err:
                detail = ", ".join(
                    f"{a} ({'/'.join(sorted(seen[(version, a, direction)]['errors']))})" for a in err)
                print(f"    only CALLERROR: {detail}")
            gone_text = ", ".join(f"{a} (SEND, no answer: neither peer speaks SEND frames)"
                                  if a in sends else a for a in gone)
            print(f"    not exchanged: {gone_text or '-'}")
            if version in required:
                missing_required += [f"{version} {ARROW[direction]} {a}" for a in gone]
            if args.by_peer:
                for a in names:
                    entry = seen.get((version, a, direction))
                    if entry:
                        by = "; ".join(f"{w} ({'/'.join(sorted(ans))})"
                                       for w, ans in sorted(entry["who"].items()))
                        print(f"      {a}: {by}")
        extra = sorted({a for (v, a, _d) in seen if v == version} - set(spec))
        if extra:
            print(f"  not in the schemas (?): {', '.join(extra)}")
    if missing_required:
        print("\nrequired but not exchanged:\n  " + "\n  ".join(missing_required))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

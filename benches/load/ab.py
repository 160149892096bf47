#!/usr/bin/env python3
"""Alternating A/B runs of the closed-loop benchmark: builds (or one build with different
environment variables) take turns, round after round, so a drift of the machine's load falls
on every variant alike. Prints each round's server CPU per message without (`calls`) and in
a transaction (`tx`), and the ratio; quote the medians.

Usage:
  python3 benches/load/ab.py ROUNDS LABEL=BINDIR[:VAR~VALUE...] ...

BINDIR holds central-system and charger-sim (a release build's target/release, copied aside
so the next build does not replace it). Example:
  python3 benches/load/ab.py 3 main=/tmp/bin-main change=/tmp/bin-change
Each run is `bench.py --servers ours --modes calls,tx --sizes 1000 --duration 15 --open 0
--idle 0` with OCPP_BENCH_BIN=BINDIR (about 80 s).
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rounds = int(sys.argv[1])
    for r in range(rounds):
        for variant in sys.argv[2:]:
            label, spec = variant.split("=", 1)
            bindir, *envs = spec.split(":")
            env = dict(os.environ, OCPP_BENCH_BIN=bindir)
            env.setdefault("OCPP_ADMIN_PASSWORD", "benchpass-123456")
            for e in envs:
                key, value = e.split("~", 1)
                env[key] = value
            fd, out = tempfile.mkstemp(suffix=".json")
            os.close(fd)
            subprocess.run([sys.executable, os.path.join(HERE, "bench.py"), "--servers", "ours",
                            "--modes", "calls,tx", "--sizes", "1000", "--duration", "15",
                            "--open", "0", "--idle", "0", "--out", out],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
            try:
                with open(out) as f:
                    res = json.load(f)
                t = {x["mode"]: x for x in res["throughput"] if "failed" not in x}
                calls = t["calls"]["server_cpu_per_call_us"]
                tx = t["tx"]["server_cpu_per_call_us"]
                load = open("/proc/loadavg").read().split()[0]
                print(f"round {r} {label}: calls {calls} tx {tx} ratio {tx / calls:.2f} "
                      f"calls/s {t['calls']['calls_per_s']}/{t['tx']['calls_per_s']} load {load}",
                      flush=True)
            except (OSError, KeyError, ValueError, ZeroDivisionError) as e:
                print(f"round {r} {label}: failed ({e})", flush=True)
            finally:
                os.unlink(out)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Paired windows: two central systems under the same open-loop load at the same moment, so a
drift of the machine's load falls on both alike. Consecutive runs on a shared two-core machine
differ by more than a few percent (BENCHMARKS.md, section 21); one paired round's B/A moves by
2 to 4 %, and the median of five resolves about 1 to 2 % (section 22).

Both servers (`central-system --threads 0`, each with its own SQLite file) are pinned to core
0, each with its own `charger-sim --count N --version V --load --load-mode MODE
--meter-interval 0.1 --heartbeat-interval 0.3 --threads 1` pinned to core 1 (N 1000 and V 1.6
unless given). Six seconds into the load (--settle S), the servers' CPU time is read from
every thread's /proc/<pid>/task/<tid>/schedstat (nanoseconds) at the start and the end of the
same 4 s window (--window S). Prints each round's CPU per call of A and of B and B/A; quote the
median of B/A. A later window (--settle 40) shows a network whose sessions have run for a while:
their database tables are larger than in the first seconds. The figures are for two servers
sharing one core, not for one alone, and only while that core is not full: a round where the
two together used more than 85 % of it is flagged (each then gets the scheduler's share,
whatever its work), and fewer chargers (--count) keep it below.

Usage:
  python3 benches/load/paired.py ROUNDS A B [--count N] [--window S] [--settle S] [--version V]

A and B are LABEL=BINDIR:MODE[:VAR~VALUE...]; BINDIR holds central-system and charger-sim (a
release build's target/release, copied aside), MODE is an open load mode of charger-sim
(`tx-open` or `calls-open`), VAR~VALUE sets an environment variable of that server. Examples:
  python3 benches/load/paired.py 5 calls=/tmp/bin:calls-open tx=/tmp/bin:tx-open
  python3 benches/load/paired.py 3 main=/tmp/bin-main:tx-open new=/tmp/bin-new:tx-open
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from bench import limits, wait_port

METER_INTERVAL = 0.1
HEARTBEAT_INTERVAL = 0.3
SETTLE = 6.0


def cpu_ns(pid):
    """CPU time of every thread of `pid` so far, in nanoseconds."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended between the listing and the read
    return total


def parse(spec):
    label, rest = spec.split("=", 1)
    bindir, mode, *envs = rest.split(":")
    env = dict(os.environ)
    env.setdefault("OCPP_ADMIN_PASSWORD", "benchpass-123456")
    env["RUST_LOG"] = "error"
    for e in envs:
        key, value = e.split("~", 1)
        env[key] = value
    return label, bindir, mode, env


def one_round(specs, count, window, version, workdir, settle=SETTLE):
    servers, sims = [], []
    try:
        for k, (_, bindir, _, env) in enumerate(specs):
            port = 19500 + 10 * k
            db = os.path.join(workdir, f"paired-{k}.db")
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(db + suffix):
                    os.unlink(db + suffix)
            # The journal's segment files (a fresh database must not replay the last round's).
            shutil.rmtree(db + ".journal", ignore_errors=True)
            log = open(os.path.join(workdir, f"server-{k}.log"), "wb")
            proc = subprocess.Popen(
                [os.path.join(bindir, "central-system"), "--ocpp-listen", f"127.0.0.1:{port}",
                 "--http-listen", f"127.0.0.1:{port + 1}", "--database-url", f"sqlite://{db}",
                 "--threads", "0"],
                env=env, stdout=subprocess.DEVNULL, stderr=log, preexec_fn=limits(0))
            servers.append(proc)
            wait_port(port, proc)
        for k, (_, bindir, mode, _) in enumerate(specs):
            port = 19500 + 10 * k
            sims.append(subprocess.Popen(
                [os.path.join(bindir, "charger-sim"), "--url", f"ws://127.0.0.1:{port}/ocpp",
                 "--count", str(count), "--version", version, "--load", "--load-mode", mode,
                 "--meter-interval", str(METER_INTERVAL),
                 "--heartbeat-interval", str(HEARTBEAT_INTERVAL), "--threads", "1",
                 "--ramp", "2000", "--duration", str(settle + window + 2)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=limits(1)))
        time.sleep(settle)
        before = [cpu_ns(p.pid) for p in servers]
        time.sleep(window)
        after = [cpu_ns(p.pid) for p in servers]
        for s in sims:
            s.wait(60)
        for p in servers:
            if p.poll() is not None:
                raise RuntimeError(f"a server exited early ({p.returncode})")
        used = sum(a - b for a, b in zip(after, before)) / (window * 1e9)
        if used > 0.85:
            # Both servers share one core: once it is full, each gets the scheduler's share
            # and B/A says nothing of the work. Fewer chargers (--count) keep it below.
            print(f"warning: core 0 {used:.0%} busy; this round's ratio is not the work's",
                  flush=True)
        calls = count * (1 / METER_INTERVAL + 1 / HEARTBEAT_INTERVAL) * window
        return [(a - b) / 1000 / calls for a, b in zip(after, before)]
    finally:
        for s in sims:
            if s.poll() is None:
                s.kill()
                s.wait()
        for p in servers:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def main():
    args = sys.argv[1:]
    count, window, version, settle = 1000, 4.0, "1.6", SETTLE
    if "--version" in args:
        i = args.index("--version")
        version = args[i + 1]
        del args[i:i + 2]
    if "--count" in args:
        i = args.index("--count")
        count = int(args[i + 1])
        del args[i:i + 2]
    if "--settle" in args:
        i = args.index("--settle")
        settle = float(args[i + 1])
        del args[i:i + 2]
    if "--window" in args:
        i = args.index("--window")
        window = float(args[i + 1])
        del args[i:i + 2]
    if len(args) != 3:
        sys.exit(__doc__)
    rounds = int(args[0])
    specs = [parse(s) for s in args[1:]]
    (la, *_), (lb, *_) = specs
    ratios = []
    workdir = tempfile.mkdtemp(prefix="ocpp-paired-")
    try:
        for r in range(rounds):
            try:
                a, b = one_round(specs, count, window, version, workdir, settle)
            except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
                print(f"round {r}: failed ({e})", flush=True)
                continue
            ratios.append(b / a)
            load = open("/proc/loadavg").read().split()[0]
            print(f"round {r}: {la} {a:.2f} µs/call, {lb} {b:.2f} µs/call, "
                  f"{lb}/{la} {b / a:.3f} (load {load})", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if ratios:
        print(f"median {lb}/{la} over {len(ratios)} rounds: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()

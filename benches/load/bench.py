#!/usr/bin/env python3
"""The load benchmark: our central system, a bare WebSocket server (the floor) and the peers'
(the Python `ocpp` package, ocpp-rpc) under the same load from charger-sim, in the same run, on
127.0.0.1, server pinned to CPU 0 and load generators to CPU 1.

- throughput (closed loop, `--modes`): N chargers with one call in flight each, back to back,
  either alternating Heartbeat and MeterValues (7 sampled values) without a transaction
  (`calls`) or in a transaction started before the window (`tx`: 1.6 MeterValues with the
  transactionId, 2.x TransactionEvent Updated): calls/s, latency p50/p99/max, server CPU time
  per call (from /proc/<pid>/stat utime + stime, over the measurement window only), server RSS
  at the start and end of the window and every --rss-every seconds in it;
- open loop (`--open N`): N chargers in transactions, meter values every --meter-interval
  seconds and a heartbeat every --heartbeat-interval, phases spread uniformly, over several
  generator processes and 127.0.0.x source addresses: latency per action, server CPU;
  `--open-modes calls-open,tx-open` adds the same open loop without transactions first (the
  same calls at the same rate: server CPU per call in transactions ÷ without, at one load);
- connections (`--idle N`): idle chargers with heartbeats spread over several generator
  processes and 127.0.0.x source addresses: server memory per connection (RSS growth /
  connections) and heartbeat p99;
- resilience (ours): see resilience.py.

Servers: ours = the example central-system (SQLite); bare = examples/src/bin/bare-ws.rs, a
WebSocket server that answers every CALL with a fixed minimal result and does no OCPP work;
python = python_central.py; rpc = rpc_central.js.

Usage: bench.py [--servers ours,bare,python,rpc] [--modes calls,tx] [--sizes 100,1000,10000]
                [--duration 15] [--rss-every 5] [--open 10000] [--open-modes tx-open]
                [--meter-interval 10] [--heartbeat-interval 60] [--open-duration 60] [--open-settle 40]
                [--idle 15000] [--out results.json] [--port 19500]
                [--compression off,on,takeover] [--compression-min-size 256]
Needs: target/release/{central-system,charger-sim,bare-ws} (or the directory in $OCPP_BENCH_BIN,
to measure another build; $OCPP_BENCH_KEEP=1 keeps the work directory with the databases and
the servers' logs, $OCPP_BENCH_LOG sets our server's RUST_LOG, default `error`); for the peers,
scripts/interop-setup.sh (OCPP_INTEROP_PYTHON, OCPP_INTEROP_NODE_DIR). The open-file limit is
20,000 per process: at 10,000 chargers and more the generators are split into processes of at
most 5,000. Servers listen on --port + 10, + 20, ... (two runs on one machine need different
ports). Prints Markdown tables and writes JSON.

Compression (`--compression`, ours only): each run is repeated per variant: `off` (chargers offer
nothing, as before the extension), `on` (charger-sim --compression: permessage-deflate without
context takeover), `takeover` (with context takeover, server and chargers); messages below
--compression-min-size bytes go uncompressed both ways (0: every message compressed).
"""
import argparse
import json
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HERE = os.path.dirname(os.path.abspath(__file__))
TICK = os.sysconf("SC_CLK_TCK")
FD_LIMIT = 20000
BIN = os.environ.get("OCPP_BENCH_BIN") or os.path.join(ROOT, "target/release")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    """Samples a process's CPU time (user + system) every 20 ms and its RSS every 200 ms."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples, self.rss, self.stop = pid, [], [], False

    def run(self):
        n = 0
        while not self.stop:
            try:
                self.samples.append((time.monotonic(), cpu_seconds(self.pid)))
                if n % 10 == 0:
                    self.rss.append((time.monotonic(), rss_kib(self.pid)))
            except OSError:
                return
            n += 1
            time.sleep(0.02)

    def rss_at(self, t):
        """RSS (KiB) of the sample nearest to t."""
        return min(self.rss, key=lambda s: abs(s[0] - t))[1] if self.rss else 0

    def at(self, t):
        prev = None
        for s in self.samples:
            if s[0] >= t:
                if prev is None:
                    return s[1]
                f = (t - prev[0]) / max(s[0] - prev[0], 1e-9)
                return prev[1] + f * (s[1] - prev[1])
            prev = s
        return self.samples[-1][1] if self.samples else 0.0


def limits(cpu):
    def apply():
        os.sched_setaffinity(0, {cpu})
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = min(FD_LIMIT, hard) if hard != resource.RLIM_INFINITY else FD_LIMIT
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return apply


def wait_port(port, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


# The compression variant of the current run (--compression): extra arguments of our server and
# of the generators.
COMPRESSION = {"variant": "off", "min_size": 256}


def server_compression_args():
    v, n = COMPRESSION["variant"], str(COMPRESSION["min_size"])
    if v == "off":
        return []
    args = ["--compression", "on", "--compression-min-size", n]
    return args + (["--compression-context-takeover"] if v == "takeover" else [])


def sim_compression_args():
    v, n = COMPRESSION["variant"], str(COMPRESSION["min_size"])
    if v == "off":
        return []
    args = ["--compression", "--compression-min-size", n]
    return args + (["--compression-context-takeover"] if v == "takeover" else [])


class Server:
    def __init__(self, kind, port, workdir):
        self.kind, self.port = kind, port
        env = dict(os.environ)
        if kind == "bare":
            cmd = [os.path.join(BIN, "bare-ws"), "--listen", f"127.0.0.1:{port}",
                   "--threads", os.environ.get("OCPP_BENCH_THREADS", "0")]
            self.name = "bare WebSocket (no OCPP work)"
        elif kind == "ours":
            cmd = [os.path.join(BIN, "central-system"),
                   "--ocpp-listen", f"127.0.0.1:{port}", "--http-listen", f"127.0.0.1:{port + 1}",
                   "--database-url", f"sqlite://{workdir}/bench-{port}.db", "--threads", os.environ.get("OCPP_BENCH_THREADS", "0")]
            cmd += server_compression_args()
            env["RUST_LOG"] = os.environ.get("OCPP_BENCH_LOG", "error")
            self.name = "ocpp-rs central-system (SQLite)"
        elif kind == "python":
            cmd = [os.environ["OCPP_INTEROP_PYTHON"], os.path.join(HERE, "python_central.py"), str(port)]
            self.name = "Python ocpp 2.1.0 (websockets)"
        elif kind == "rpc":
            node_dir = os.environ["OCPP_INTEROP_NODE_DIR"]
            env["NODE_PATH"] = os.path.join(node_dir, "node_modules")
            cmd = ["node", os.path.join(HERE, "rpc_central.js"), str(port)]
            self.name = "ocpp-rpc 2.2.1 (strict mode)"
        else:
            raise ValueError(kind)
        # The server's log goes to a file (a pipe nobody reads would block it once full).
        self.log = os.path.join(workdir, f"server-{kind}-{port}.log")
        with open(self.log, "wb") as log_file:
            self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log_file,
                                         preexec_fn=limits(0))
        wait_port(port, self.proc)
        time.sleep(0.5)
        self.sampler = Sampler(self.proc.pid)
        self.sampler.start()

    def close(self):
        self.sampler.stop = True
        if self.proc.poll() is not None:
            with open(self.log, errors="replace") as f:
                log(f"{self.name} exited early ({self.proc.returncode}): {f.read()[-2000:]}")
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def sim(args, cpu=1):
    cmd = [os.path.join(BIN, "charger-sim")] + args + sim_compression_args()
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=limits(cpu))


def report_of(proc, timeout):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise RuntimeError(f"charger-sim timed out: {err[-400:]}")
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"charger-sim failed ({proc.returncode}): {err[-600:]}")
    return json.loads(lines[-1])


def mib(kib):
    return round(kib / 1024, 1)


def throughput(server, n, duration, version, mode="calls", rss_every=5):
    """Closed loop, one generator process: `calls` (Heartbeat/MeterValues, no transaction) or
    `tx` (Heartbeat and the meter values of a transaction started before the window)."""
    t0 = time.monotonic()
    p = sim(["--url", f"ws://127.0.0.1:{server.port}/ocpp", "--count", str(n), "--version", version,
             "--load", "--load-mode", mode, "--duration", str(duration), "--json", "--quiet",
             "--threads", "1", "--ramp", "2000", "--prefix", f"T{n}", "--warmup-timeout", "120"])
    r = report_of(p, duration + 300)
    w0 = t0 + r["warmup_s"]
    w1 = w0 + r["duration_s"]
    cpu = server.sampler.at(w1) - server.sampler.at(w0)
    calls = max(r["calls"], 1)
    r["server_cpu_s"] = round(cpu, 3)
    r["server_cpu_per_call_us"] = round(cpu / calls * 1e6, 2)
    r["server_rss_mib"] = mib(rss_kib(server.proc.pid))
    r["rss_start_mib"] = mib(server.sampler.rss_at(w0))
    r["rss_end_mib"] = mib(server.sampler.rss_at(w1))
    steps = int(r["duration_s"] // rss_every)
    r["rss_series_mib"] = [mib(server.sampler.rss_at(w0 + i * rss_every)) for i in range(steps + 1)]
    return r


def generators(server, total, per_process, args, prefix):
    """Starts ceil(total / per_process) charger-sim processes (under the open-file limit), each
    from its own eight source addresses 127.0.<i+1>.1-8 used in turn: enough ephemeral ports, and
    at most 625 connections per address at 5,000 per process (ocpp-central's server admits 4,096
    per address by default, ServerConfig::max_connections_per_address)."""
    procs = []
    n_procs = (total + per_process - 1) // per_process
    for i in range(n_procs):
        count = min(per_process, total - i * per_process)
        procs.append(sim(["--url", f"ws://127.0.0.1:{server.port}/ocpp", "--count", str(count),
                          "--first-index", str(i * per_process + 1), "--prefix", prefix,
                          "--json", "--quiet", "--threads", "1", "--ramp", "1500", "--histograms",
                          "--bind-ip", f"127.0.{i + 1}.1-127.0.{i + 1}.8"] + args))
    return procs


def merged(reports, key):
    """p50/p99/max of the histograms `key` ("all" or an action) of several charger-sim reports
    (--histograms) merged: the buckets are the same in every process, and the quantile rule is
    examples/src/sim/histogram.rs's (the bucket's largest value, capped at the exact maximum)."""
    counts, max_us = {}, 0.0
    for r in reports:
        for upper, c in r.get("buckets", {}).get(key, []):
            counts[upper] = counts.get(upper, 0) + c
        lat = r["latency"] if key == "all" else r["by_action"].get(key)
        if lat:
            max_us = max(max_us, lat["max_us"])
    total = sum(counts.values())
    order = sorted(counts.items())

    def quantile(q):
        if not total:
            return 0.0
        rank, seen = min(max(math.ceil(q * total), 1), total), 0
        for upper, c in order:
            seen += c
            if seen >= rank:
                return round(min(upper / 1000, max_us), 1)
        return max_us

    return {"count": total, "p50_us": quantile(0.5), "p99_us": quantile(0.99), "max_us": max_us}


def open_loop(server, total, per_process=5000, meter=10, heartbeat=60, duration=60, version="1.6",
              settle=40, mode="tx-open"):
    """Open loop: `total` chargers in transactions (`mode` tx-open; calls-open: the same load
    without transactions), meter values every `meter` s and a heartbeat every `heartbeat` s
    each, phases spread uniformly. Every generator opens its window at the
    same moment, `settle` s after they start (--window-at): after all of them have connected
    and started their transactions (the connect and start storm is not the steady state this
    measures), the load running meanwhile. Percentiles are those of the generator processes'
    histograms merged; server CPU is over the time all windows were open."""
    t0 = time.monotonic()
    window_at = time.time() + settle
    procs = generators(server, total, per_process,
                       ["--version", version, "--load", "--load-mode", mode,
                        "--meter-interval", str(meter), "--heartbeat-interval", str(heartbeat),
                        "--duration", str(duration), "--warmup-timeout", "180",
                        "--window-at", f"{window_at:.3f}"], "OPEN")
    reports = [report_of(p, settle + duration + 400) for p in procs]
    late = [r["warmup_s"] for r in reports if r.get("settle_s", 0) <= 0]
    if late:
        log(f"open loop: {len(late)} generator(s) warmed up after the common window opened "
            f"(at {max(late):.1f} s instead of {settle} s): raise --open-settle")
    w0 = t0 + max(r["warmup_s"] for r in reports)
    w1 = t0 + min(r["warmup_s"] + r["duration_s"] for r in reports)
    cpu = server.sampler.at(w1) - server.sampler.at(w0) if w1 > w0 else 0.0
    calls_per_s = sum(r["calls_per_s"] for r in reports)
    out = {
        "mode": mode, "chargers": total, "connected": sum(r["connected"] for r in reports),
        "transactions": sum(r["transactions"] for r in reports),
        "meter_interval_s": meter, "heartbeat_interval_s": heartbeat, "duration_s": duration,
        "settle_s": settle, "late_generators": len(late),
        "calls": sum(r["calls"] for r in reports), "calls_per_s": round(calls_per_s),
        "errors": sum(r["errors"] for r in reports),
        "error_kinds": {k: sum(r.get(k, 0) for r in reports)
                        for k in ("call_errors", "timeouts", "disconnects", "connect_failures",
                                  "boot_rejections")},
        "server_cpu_percent": round(cpu / max(w1 - w0, 1e-9) * 100, 1),
        "server_cpu_per_call_us": round(cpu / max(calls_per_s * (w1 - w0), 1) * 1e6, 2),
        "rss_start_mib": mib(server.sampler.rss_at(w0)), "rss_end_mib": mib(server.sampler.rss_at(w1)),
        "send_lag_p99_ms": round(max(r["send_lag"]["p99_us"] for r in reports) / 1000, 2),
        "latency": merged(reports, "all"),
        "by_action": {action: merged(reports, action)
                      for action in sorted({a for r in reports for a in r["by_action"]})},
    }
    return out


def idle(server, total, per_process=5000, heartbeat=10, duration=30, version="1.6"):
    base = rss_kib(server.proc.pid)
    procs = generators(server, total, per_process,
                       ["--version", version, "--load", "--load-mode", "idle",
                        "--heartbeat-interval", str(heartbeat), "--duration", str(duration),
                        "--warmup-timeout", "180"], "IDLE")
    # The peak of the server's RSS from the first connection until the generators exit (their
    # connections closed), sampled every 0.5 s; the samples every 2 s go to the JSON.
    peak = base
    series = []
    reports = [None] * len(procs)
    deadline = time.monotonic() + duration + 400
    while any(r is None for r in reports) and time.monotonic() < deadline:
        rss = rss_kib(server.proc.pid)
        peak = max(peak, rss)
        series.append(rss)
        for i, p in enumerate(procs):
            if reports[i] is None and p.poll() is not None:
                reports[i] = report_of(p, 5)
        time.sleep(0.5)
    for i, p in enumerate(procs):
        if reports[i] is None:
            reports[i] = report_of(p, 5)
    connected = sum(r["connected"] for r in reports)
    booted = sum(r["booted"] for r in reports)
    return {
        "chargers": total, "connected": connected, "booted": booted,
        "rss_base_mib": round(base / 1024, 1), "rss_peak_mib": round(peak / 1024, 1),
        "bytes_per_connection": round((peak - base) * 1024 / max(connected, 1)),
        "heartbeats": sum(r["calls"] for r in reports),
        "errors": sum(r["errors"] for r in reports),
        "error_kinds": {k: sum(r.get(k, 0) for r in reports)
                        for k in ("call_errors", "timeouts", "disconnects", "connect_failures",
                                  "boot_rejections")},
        "heartbeat_p99_ms": round(merged(reports, "all")["p99_us"] / 1000, 2),
        "heartbeat_max_ms": round(max(r["latency"]["max_us"] for r in reports) / 1000, 2),
        "rss_series_mib": [mib(x) for x in series[::4]],
    }


def run_server(kind, port, work, what, fn):
    """Runs fn(server) on a fresh server; a server that cannot keep up is a result too."""
    srv = Server(kind, port, work)
    try:
        log(f"{what}: {srv.name}")
        r = fn(srv)
        r.update(server=srv.name, kind=kind)
    except Exception as e:
        r = {"server": srv.name, "kind": kind, "failed": str(e)}
    finally:
        srv.close()
    log(json.dumps(r))
    return r


def ms(us):
    return f"{us / 1000:.2f}"


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "n/a"


def print_tables(results):
    print("### Closed loop (one call in flight per charger, back to back)")
    print()
    print("| server | mode | chargers | calls/s | p50 ms | p99 ms | max ms | errors | server CPU/call | RSS start → end (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results["throughput"]:
        if "failed" in r:
            print(f"| {r['server']} | {r.get('mode')} | {r.get('chargers')} | failed: {r['failed'][:80]} |||||||")
            continue
        lat = r["latency"]
        print(f"| {r['server']} | {r['mode']} | {r['chargers']} | {r['calls_per_s']:.0f} | {ms(lat['p50_us'])} | "
              f"{ms(lat['p99_us'])} | {ms(lat['max_us'])} | {r['errors']} | {r['server_cpu_per_call_us']} µs | "
              f"{r['rss_start_mib']} → {r['rss_end_mib']} |")
    ok = {(r["kind"], r["mode"], r["chargers"]): r for r in results["throughput"] if "failed" not in r}
    print()
    print("| server | chargers | CPU/call tx ÷ calls | tx CPU/call ÷ bare tx | calls CPU/call ÷ bare calls |")
    print("|---|---|---|---|---|")
    for (kind, mode, n), r in ok.items():
        if mode != "tx":
            continue
        calls = ok.get((kind, "calls", n), {}).get("server_cpu_per_call_us")
        bare_tx = ok.get(("bare", "tx", n), {}).get("server_cpu_per_call_us")
        bare_calls = ok.get(("bare", "calls", n), {}).get("server_cpu_per_call_us")
        print(f"| {r['server']} | {n} | {ratio(r['server_cpu_per_call_us'], calls)} | "
              f"{ratio(r['server_cpu_per_call_us'], bare_tx)} | {ratio(calls, bare_calls)} |")
    print()
    print("RSS in the window, MiB, every few seconds:")
    print()
    for r in results["throughput"]:
        if "failed" not in r:
            print(f"- {r['server']}, {r['mode']}, {r['chargers']}: {', '.join(str(x) for x in r['rss_series_mib'])}")
    if results["open"]:
        print()
        print("### Open loop: meter values and heartbeats at spread phases (tx-open: in transactions; "
              "calls-open: the same load without)")
        print()
        print("| server | mode | chargers | calls/s | action | calls | p50 ms | p99 ms | max ms | errors | server CPU | send lag p99 |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in results["open"]:
            if "failed" in r:
                print(f"| {r['server']} | {r.get('mode')} | failed: {r['failed'][:80]} ||||||||||")
                continue
            for action, l in sorted(r["by_action"].items()):
                print(f"| {r['server']} | {r['mode']} | {r['connected']} / {r['chargers']} | {r['calls_per_s']} | {action} | "
                      f"{l['count']} | {ms(l['p50_us'])} | {ms(l['p99_us'])} | {ms(l['max_us'])} | {r['errors']} | "
                      f"{r['server_cpu_percent']} % ({r['server_cpu_per_call_us']} µs/call) | {r['send_lag_p99_ms']} ms |")
        opened = {(r["kind"], r["mode"]): r for r in results["open"] if "failed" not in r}
        pairs = [(kind, r, opened.get((kind, "calls-open"))) for (kind, mode), r in opened.items()
                 if mode == "tx-open" and (kind, "calls-open") in opened]
        if pairs:
            print()
            print("| server | CPU/call tx-open ÷ calls-open (the same load) | tx-open ÷ bare tx-open |")
            print("|---|---|---|")
            for kind, tx, calls in pairs:
                bare = opened.get(("bare", "tx-open"), {}).get("server_cpu_per_call_us")
                print(f"| {tx['server']} | {ratio(tx['server_cpu_per_call_us'], calls['server_cpu_per_call_us'])} | "
                      f"{ratio(tx['server_cpu_per_call_us'], bare)} |")
    if results["idle"]:
        print()
        print("### Idle connections")
        print()
        print("| server | idle chargers connected | RSS growth per connection | heartbeat p99 | errors |")
        print("|---|---|---|---|---|")
        for r in results["idle"]:
            if "failed" in r:
                print(f"| {r['server']} | failed: {r['failed'][:80]} ||||")
                continue
            print(f"| {r['server']} | {r['connected']} / {r['chargers']} | {r['bytes_per_connection'] / 1024:.1f} KiB | "
                  f"{r['heartbeat_p99_ms']} ms | {r['errors']} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", default="ours,bare,python,rpc")
    ap.add_argument("--modes", default="calls,tx", help="closed-loop modes: calls, tx")
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--rss-every", type=float, default=5, help="seconds between RSS figures in the window")
    ap.add_argument("--version", default="1.6")
    ap.add_argument("--open", type=int, default=10000, help="open-loop chargers (0: skip)")
    ap.add_argument("--open-duration", type=int, default=60)
    ap.add_argument("--open-settle", type=int, default=40,
                    help="seconds from the generators' start to the common open-loop window")
    ap.add_argument("--open-modes", default="tx-open",
                    help="open-loop modes: tx-open (in transactions), calls-open (the same load without)")
    ap.add_argument("--meter-interval", type=float, default=10)
    ap.add_argument("--heartbeat-interval", type=float, default=60)
    ap.add_argument("--idle", type=int, default=15000)
    ap.add_argument("--out", default=os.path.join(ROOT, "target/load-bench.json"))
    ap.add_argument("--port", type=int, default=19500, help="servers listen on PORT+10, PORT+20, ...")
    ap.add_argument("--compression", default="off",
                    help="variants, comma-separated: off, on, takeover (ours only)")
    ap.add_argument("--compression-min-size", type=int, default=256)
    a = ap.parse_args()
    COMPRESSION["min_size"] = a.compression_min_size
    results = {"machine": os.uname().release, "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
               "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True,
                                        text=True).stdout.strip(),
               "args": vars(a), "throughput": [], "open": [], "idle": []}
    work = tempfile.mkdtemp(prefix="ocpp-load-")
    port = a.port
    try:
        for kind, variant in [(k, v) for k in a.servers.split(",")
                              for v in (a.compression.split(",") if k == "ours" else ["off"])]:
            COMPRESSION["variant"] = variant
            for mode in [m for m in a.modes.split(",") if m]:
                for n in [int(x) for x in a.sizes.split(",") if x]:
                    port += 10
                    r = run_server(kind, port, work, f"throughput {mode}, {n} chargers",
                                   lambda srv: throughput(srv, n, a.duration, a.version, mode, a.rss_every))
                    r.update(mode=mode, chargers=n, compression=variant)
                    results["throughput"].append(r)
            for open_mode in [m for m in a.open_modes.split(",") if m and a.open]:
                port += 10
                r = run_server(kind, port, work, f"open loop ({open_mode}), {a.open} chargers",
                               lambda srv: open_loop(srv, a.open, meter=a.meter_interval,
                                                     heartbeat=a.heartbeat_interval,
                                                     duration=a.open_duration, version=a.version,
                                                     settle=a.open_settle, mode=open_mode))
                r.setdefault("chargers", a.open)
                r.setdefault("mode", open_mode)
                r["compression"] = variant
                results["open"].append(r)
            if a.idle:
                port += 10
                r = run_server(kind, port, work, f"idle connections, {a.idle} chargers",
                               lambda srv: idle(srv, a.idle, version=a.version))
                r.setdefault("chargers", a.idle)
                r["compression"] = variant
                results["idle"].append(r)
    finally:
        if os.environ.get("OCPP_BENCH_KEEP"):
            log(f"kept {work} (databases and server logs)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
    print_tables(results)


if __name__ == "__main__":
    main()

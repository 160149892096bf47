#!/usr/bin/env python3
"""The load benchmark: our central system and the peers' (the Python `ocpp` package, ocpp-rpc)
under the same load from charger-sim, in the same run, on 127.0.0.1, server pinned to CPU 0 and
load generators to CPU 1.

- throughput: N chargers alternating Heartbeat and MeterValues (7 sampled values), one call in
  flight each: calls/s, latency p50/p99/max, server CPU time per call (from /proc, over the
  measurement window only);
- connections: idle chargers with heartbeats spread over several generator processes and
  127.0.0.x source addresses: server memory per connection (RSS growth / connections) and
  heartbeat p99;
- resilience (ours): see resilience.py.

Usage: bench.py [--servers ours,python,rpc] [--sizes 100,1000,10000] [--duration 15]
                [--idle 15000] [--out results.json]
Needs: target/release/{central-system,charger-sim}; for the peers, scripts/interop-setup.sh
(OCPP_INTEROP_PYTHON, OCPP_INTEROP_NODE_DIR). Prints a Markdown table and writes JSON.
"""
import argparse
import json
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
    """Samples a process's CPU time (user + system) every 20 ms."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop = pid, [], False

    def run(self):
        while not self.stop:
            try:
                self.samples.append((time.monotonic(), cpu_seconds(self.pid)))
            except OSError:
                return
            time.sleep(0.02)

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


class Server:
    def __init__(self, kind, port, workdir):
        self.kind, self.port = kind, port
        env = dict(os.environ)
        if kind == "ours":
            cmd = [os.path.join(ROOT, "target/release/central-system"),
                   "--ocpp-listen", f"127.0.0.1:{port}", "--http-listen", f"127.0.0.1:{port + 1}",
                   "--database-url", f"sqlite://{workdir}/bench-{port}.db", "--threads", os.environ.get("OCPP_BENCH_THREADS", "0")]
            env["RUST_LOG"] = "error"
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
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=limits(0))
        wait_port(port, self.proc)
        time.sleep(0.5)
        self.sampler = Sampler(self.proc.pid)
        self.sampler.start()

    def close(self):
        self.sampler.stop = True
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def sim(args, cpu=1):
    cmd = [os.path.join(ROOT, "target/release/charger-sim")] + args
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


def throughput(server, n, duration, version):
    t0 = time.monotonic()
    p = sim(["--url", f"ws://127.0.0.1:{server.port}/ocpp", "--count", str(n), "--version", version,
             "--load", "--duration", str(duration), "--json", "--quiet", "--threads", "1",
             "--ramp", "2000", "--prefix", f"T{n}", "--warmup-timeout", "120"])
    r = report_of(p, duration + 300)
    w0 = t0 + r["warmup_s"]
    w1 = w0 + r["duration_s"]
    cpu = server.sampler.at(w1) - server.sampler.at(w0)
    calls = max(r["calls"], 1)
    r["server_cpu_s"] = round(cpu, 3)
    r["server_cpu_per_call_us"] = round(cpu / calls * 1e6, 2)
    r["server_rss_mib"] = round(rss_kib(server.proc.pid) / 1024, 1)
    return r


def idle(server, total, per_process=5000, heartbeat=10, duration=30, version="1.6"):
    base = rss_kib(server.proc.pid)
    procs = []
    n_procs = (total + per_process - 1) // per_process
    for i in range(n_procs):
        count = min(per_process, total - i * per_process)
        procs.append(sim(["--url", f"ws://127.0.0.1:{server.port}/ocpp", "--count", str(count),
                          "--first-index", str(i * per_process + 1), "--prefix", "IDLE",
                          "--version", version, "--load", "--scenario", "idle",
                          "--heartbeat-interval", str(heartbeat), "--duration", str(duration),
                          "--json", "--quiet", "--threads", "1", "--ramp", "1500",
                          "--bind-ip", f"127.0.0.{i + 2}", "--warmup-timeout", "180"]))
    # Memory when every connection is up and idle: sampled mid-window by the slowest generator.
    peak = base
    reports = [None] * len(procs)
    deadline = time.monotonic() + duration + 400
    while any(r is None for r in reports) and time.monotonic() < deadline:
        peak = max(peak, rss_kib(server.proc.pid))
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
        "heartbeat_p99_ms": round(max(r["latency"]["p99_us"] for r in reports) / 1000, 2),
        "heartbeat_max_ms": round(max(r["latency"]["max_us"] for r in reports) / 1000, 2),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", default="ours,python,rpc")
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--version", default="1.6")
    ap.add_argument("--idle", type=int, default=15000)
    ap.add_argument("--out", default=os.path.join(ROOT, "target/load-bench.json"))
    a = ap.parse_args()
    results = {"machine": os.uname().release, "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
               "throughput": [], "idle": []}
    work = tempfile.mkdtemp(prefix="ocpp-load-")
    port = 19500
    try:
        for kind in a.servers.split(","):
            for n in [int(x) for x in a.sizes.split(",") if x]:
                port += 10
                srv = Server(kind, port, work)
                try:
                    log(f"throughput: {srv.name}, {n} chargers")
                    r = throughput(srv, n, a.duration, a.version)
                    r.update(server=srv.name, kind=kind, chargers=n)
                except Exception as e:  # a peer that cannot keep up is a result too
                    r = {"server": srv.name, "kind": kind, "chargers": n, "failed": str(e)}
                finally:
                    srv.close()
                log(json.dumps(r))
                results["throughput"].append(r)
            if a.idle:
                port += 10
                srv = Server(kind, port, work)
                try:
                    log(f"idle connections: {srv.name}, {a.idle} chargers")
                    r = idle(srv, a.idle, version=a.version)
                    r.update(server=srv.name, kind=kind)
                except Exception as e:
                    r = {"server": srv.name, "kind": kind, "chargers": a.idle, "failed": str(e)}
                finally:
                    srv.close()
                log(json.dumps(r))
                results["idle"].append(r)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
    print("| server | chargers | calls/s | p50 ms | p99 ms | max ms | errors | server CPU/call |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results["throughput"]:
        if "failed" in r:
            print(f"| {r['server']} | {r['chargers']} | failed: {r['failed'][:80]} |||||||")
            continue
        lat = r["latency"]
        print(f"| {r['server']} | {r['chargers']} | {r['calls_per_s']:.0f} | {lat['p50_us'] / 1000:.2f} | "
              f"{lat['p99_us'] / 1000:.2f} | {lat['max_us'] / 1000:.2f} | {r['errors']} | {r['server_cpu_per_call_us']} µs |")
    print()
    print("| server | idle chargers connected | RSS growth per connection | heartbeat p99 | errors |")
    print("|---|---|---|---|---|")
    for r in results["idle"]:
        if "failed" in r:
            print(f"| {r['server']} | failed: {r['failed'][:80]} ||||")
            continue
        print(f"| {r['server']} | {r['connected']} / {r['chargers']} | {r['bytes_per_connection'] / 1024:.1f} KiB | "
              f"{r['heartbeat_p99_ms']} ms | {r['errors']} |")


if __name__ == "__main__":
    main()

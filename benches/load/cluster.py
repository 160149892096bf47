#!/usr/bin/env python3
"""The cluster benchmark: N central-system nodes (PostgreSQL + Redis) behind HAProxy, C idle
chargers from several charger-sim processes and 127.0.0.x source addresses, all on 127.0.0.1.

Measures:
- time until every charger is connected and booted (the simulators' ramp decides most of it);
- memory per node (VmRSS) at C chargers, per charger; Redis memory; each HAProxy process;
- command routing latency: GetConfiguration through the API of the node holding the charger
  (local) and through another node's API (routed through Redis), p50/p99 of sequential calls;
- kill -9 of one node: time until every charger is connected again on the other nodes.

Usage: cluster.py [--nodes 4] [--chargers 40000] [--per-sim 5000] [--balancer-procs 6]
                  [--calls 300] [--port 9000] [--out cluster.json]
Needs target/release/{central-system,charger-sim} (or $OCPP_BENCH_BIN), scripts/postgres.sh,
scripts/redis.sh, scripts/balancer.sh (they install PostgreSQL, Redis and HAProxy). The
open-file limit is 20,000 per process: a node must hold C / (N - 1) chargers after the kill,
each simulator --per-sim, each HAProxy process at most 9,000 connections.
"""
import argparse
import http.cookiejar
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("OCPP_BENCH_BIN") or os.path.join(ROOT, "target/release")


def sh(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True, cwd=ROOT).stdout.strip()


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def health(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
            return json.load(r)
    except Exception:
        return None


def connected(ports):
    total = 0
    for p in ports:
        h = health(p)
        if h:
            total += h.get("connectedChargers", 0)
    return total


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--chargers", type=int, default=40000)
    ap.add_argument("--per-sim", type=int, default=5000)
    ap.add_argument("--balancer-procs", type=int, default=6)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--port", type=int, default=9000)
    ap.add_argument("--ramp", type=int, default=400, help="new connections/s per simulator")
    ap.add_argument("--out", default="cluster.json")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ocpp-cluster-bench-")
    pg = sh("bash", "scripts/postgres.sh")
    dbname = f"ocpp_cluster_bench_{os.getpid()}"
    subprocess.run(["psql", "-q", pg, "-c", f"CREATE DATABASE {dbname}"], check=True)
    db = pg.rsplit("/", 1)[0] + "/" + dbname
    redis = sh("bash", "scripts/redis.sh")
    name = f"bench{os.getpid()}"
    password = "bench-admin-password"
    nodes = []
    procs = []
    result = {"nodes": a.nodes, "chargers": a.chargers}

    def stop_all():
        for p in procs:
            if p.poll() is None:
                p.kill()
        subprocess.run(["bash", "scripts/balancer.sh", "stop", f"127.0.0.1:{a.port}"], cwd=ROOT)

    try:
        for i in range(1, a.nodes + 1):
            ocpp, httpp = a.port + 100 + i, a.port - 900 + 100 + i
            log = open(os.path.join(work, f"node{i}.log"), "w")
            p = subprocess.Popen(
                [os.path.join(BIN, "central-system"), "--database-url", db, "--redis-url", redis,
                 "--cluster-name", name, "--node-id", f"n{i}",
                 "--ocpp-listen", f"127.0.0.1:{ocpp}", "--http-listen", f"127.0.0.1:{httpp}",
                 "--max-connections", "19000", "--max-connections-per-ip", "19000",
                 "--heartbeat-interval", "300"],
                stdout=subprocess.DEVNULL, stderr=log,
                env=dict(os.environ, OCPP_ADMIN_PASSWORD=password, RUST_LOG="warn"))
            procs.append(p)
            nodes.append({"id": f"n{i}", "ocpp": ocpp, "http": httpp, "proc": p})
            while health(httpp) is None:
                time.sleep(0.2)
        ws = sh("bash", "scripts/balancer.sh", "start", f"127.0.0.1:{a.port}", str(a.balancer_procs),
                *[f"127.0.0.1:{n['ocpp']}=127.0.0.1:{n['http']}" for n in nodes])
        time.sleep(2.5)  # HAProxy's first health checks
        http_ports = [n["http"] for n in nodes]

        base_rss = {n["id"]: rss_kib(n["proc"].pid) for n in nodes}
        result["node_rss_mib_idle"] = {k: round(v / 1024, 1) for k, v in base_rss.items()}
        t0 = time.time()
        sims = []
        for k in range(0, a.chargers, a.per_sim):
            count = min(a.per_sim, a.chargers - k)
            src = f"127.0.0.{2 + k // a.per_sim}"
            log = open(os.path.join(work, f"sim{k // a.per_sim}.log"), "w")
            s = subprocess.Popen(
                [os.path.join(BIN, "charger-sim"), "--url", ws, "--count", str(count),
                 "--first-index", str(k + 1), "--prefix", "B", "--version", "1.6",
                 "--evses", "1", "--scenario", "idle", "--ramp", str(a.ramp), "--bind-ip", src],
                stdout=log, stderr=subprocess.STDOUT)
            procs.append(s)
            sims.append(s)
        while connected(http_ports) < a.chargers:
            if time.time() - t0 > 600:
                raise SystemExit(f"only {connected(http_ports)} of {a.chargers} connected after 600 s")
            time.sleep(1)
        result["connect_all_s"] = round(time.time() - t0, 1)
        time.sleep(10)  # boots, statuses and their writes settle
        per_node = {n["id"]: health(n["http"])["connectedChargers"] for n in nodes}
        result["per_node"] = per_node
        result["node_rss_mib"] = {n["id"]: round(rss_kib(n["proc"].pid) / 1024, 1) for n in nodes}
        result["kib_per_charger"] = {
            n["id"]: round((rss_kib(n["proc"].pid) - base_rss[n["id"]]) / max(1, per_node[n["id"]]), 2)
            for n in nodes}
        info = subprocess.run(["redis-cli", "-u", redis, "info", "memory"], capture_output=True,
                              text=True).stdout
        used = [l for l in info.splitlines() if l.startswith("used_memory:")]
        result["redis_mib"] = round(int(used[0].split(":")[1]) / 2**20, 1) if used else None
        hap = []
        for f in os.listdir(f"/tmp/ocpp-rs-haproxy-{a.port}"):
            if f.endswith(".pid"):
                with open(os.path.join(f"/tmp/ocpp-rs-haproxy-{a.port}", f)) as fh:
                    hap.append(round(rss_kib(int(fh.read().strip())) / 1024, 1))
        result["haproxy_rss_mib"] = hap

        # Routing latency: local vs routed, sequential GetConfiguration calls.
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        req = urllib.request.Request(
            f"http://127.0.0.1:{nodes[0]['http']}/api/login",
            data=json.dumps({"username": "admin", "password": password}).encode(),
            headers={"content-type": "application/json"})
        opener.open(req).read()
        keys = subprocess.run(
            ["redis-cli", "-u", redis, "--scan", "--pattern", f"{name}:presence:*"],
            capture_output=True, text=True).stdout.split()
        keys = keys[:: max(1, len(keys) // (2 * a.calls))]
        ids = [k.split(":presence:", 1)[1] for k in keys]
        owners = subprocess.run(["redis-cli", "-u", redis, "mget", *keys],
                                capture_output=True, text=True).stdout.split("\n")
        by_id = {i: o.split("|")[0] for i, o in zip(ids, owners) if "|" in o}
        node_http = {n["id"]: n["http"] for n in nodes}
        lat = {"local": [], "routed": []}
        for i, owner in list(by_id.items())[: 2 * a.calls]:
            for kind in ("local", "routed"):
                via = owner if kind == "local" else next(n for n in node_http if n != owner)
                url = f"http://127.0.0.1:{node_http[via]}/api/chargers/{i}/configuration?keys=HeartbeatInterval"
                t = time.perf_counter()
                with opener.open(url, timeout=60) as r:
                    r.read()
                    assert r.status == 200
                lat[kind].append((time.perf_counter() - t) * 1000)
        for kind, xs in lat.items():
            result[f"{kind}_ms"] = {"n": len(xs), "p50": round(pct(xs, 0.5), 2),
                                    "p99": round(pct(xs, 0.99), 2), "max": round(max(xs), 2)}

        # kill -9 of the node with the most chargers.
        victim = max(nodes, key=lambda n: per_node[n["id"]])
        survivors = [n["http"] for n in nodes if n is not victim]
        t = time.time()
        os.kill(victim["proc"].pid, signal.SIGKILL)
        victim["proc"].wait()
        while connected(survivors) < a.chargers:
            if time.time() - t > 600:
                raise SystemExit(f"only {connected(survivors)} back after 600 s")
            time.sleep(0.5)
        result["killed"] = {"node": victim["id"], "chargers": per_node[victim["id"]],
                            "all_back_s": round(time.time() - t, 1)}
        result["per_node_after"] = {n["id"]: health(n["http"])["connectedChargers"]
                                    for n in nodes if n is not victim}
        result["node_rss_mib_after"] = {n["id"]: round(rss_kib(n["proc"].pid) / 1024, 1)
                                        for n in nodes if n is not victim}
        print(json.dumps(result, indent=2))
        with open(a.out, "w") as f:
            json.dump(result, f, indent=2)
        print(f"logs in {work}", file=sys.stderr)
    finally:
        stop_all()


if __name__ == "__main__":
    main()

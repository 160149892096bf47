#!/usr/bin/env python3
"""Resilience under load: N chargers (default 10,000) run scripted charging sessions against
our central-system (SQLite); the central system is killed with SIGKILL mid-run and restarted on
the same database and port. Measures how long until every charger is connected again, and
counts transaction messages and sessions on both sides:

- the simulator's transactions started / ended and transaction messages given up (dropped);
- the database's sessions (all, completed) and the journal: every transaction message the
  central system answered, before and after the kill, how many a start would still replay
  (left unprojected: the restart projects them), how many are linked to their session (where
  the sessions' meter samples are read from) and how many were set aside.

Usage: resilience.py [--chargers 10000] [--before 40] [--after 40]
Needs target/release/{central-system,charger-sim}. Prints JSON.
"""
import argparse
import json
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

ROOT = bench.ROOT


def journal_records(db):
    """(id, charger) of every readable record of the journal's segment files (the directory
    `<db>.journal`, format in examples/src/backend/journal_file.rs): a record is its payload's
    length and CRC-32 (both u32 little-endian) and the payload, a node flag byte and then
    length-prefixed texts (time, charger, ...); its id is `segment << 36 | offset`. A segment
    is read up to its first record that does not check (a torn tail)."""
    out = []
    folder = db + ".journal"
    if not os.path.isdir(folder):
        return out
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".log"):
            continue
        number = int(name[:-4])
        with open(os.path.join(folder, name), "rb") as f:
            data = f.read()
        offset = 0
        while offset + 8 <= len(data):
            length, crc = struct.unpack_from("<II", data, offset)
            payload = data[offset + 8:offset + 8 + length]
            if len(payload) < length or zlib.crc32(payload) != crc:
                break
            (skip,) = struct.unpack_from("<I", payload, 1)  # the time written
            at = 5 + skip
            (size,) = struct.unpack_from("<I", payload, at)
            out.append(((number << 36) | offset, payload[at + 4:at + 4 + size].decode()))
            offset += 8 + length
    return out


def health(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return json.load(r)
    except Exception:
        return None


def start_central(port, db):
    cmd = [os.path.join(ROOT, "target/release/central-system"), "--ocpp-listen", f"127.0.0.1:{port}",
           "--http-listen", f"127.0.0.1:{port + 1}", "--database-url", f"sqlite://{db}"]
    env = dict(os.environ, RUST_LOG="error")
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         preexec_fn=bench.limits(0))
    bench.wait_port(port + 1, p)
    return p


def wait_connected(port, n, timeout):
    t0 = time.monotonic()
    last = 0
    while time.monotonic() - t0 < timeout:
        h = health(port + 1)
        if h:
            last = h.get("connectedChargers", 0)
            if last >= n:
                return time.monotonic() - t0
        time.sleep(0.2)
    raise RuntimeError(f"only {last} of {n} chargers connected after {timeout} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chargers", type=int, default=10000)
    ap.add_argument("--before", type=int, default=40)
    ap.add_argument("--after", type=int, default=40)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ocpp-resilience-")
    db = os.path.join(work, "central.db")
    port = 19900
    central = start_central(port, db)
    per = 5000
    sims = []
    for i in range((a.chargers + per - 1) // per):
        count = min(per, a.chargers - i * per)
        sims.append(bench.sim(["--url", f"ws://127.0.0.1:{port}/ocpp", "--count", str(count),
                               "--first-index", str(i * per + 1), "--version", "mixed",
                               "--scenario", "charge", "--charge-secs", "30", "--pause-secs", "10",
                               "--meter-interval", "10", "--ramp", "2000", "--threads", "1",
                               "--bind-ip", f"127.0.0.{i + 2}", "--quiet", "--call-timeout", "60"]))
    result = {"chargers": a.chargers}
    try:
        result["connect_all_s"] = round(wait_connected(port, a.chargers, 300), 1)
        time.sleep(a.before)
        central.send_signal(signal.SIGKILL)
        central.wait()
        killed = time.monotonic()
        central = start_central(port, db)
        result["restart_s"] = round(time.monotonic() - killed, 2)
        result["reconnect_all_s"] = round(wait_connected(port, a.chargers, 600) + result["restart_s"], 1)
        time.sleep(a.after)
        stats = []
        for s in sims:
            s.send_signal(signal.SIGINT)
        for s in sims:
            out, _ = s.communicate(timeout=120)
            stats.append(out.strip().splitlines()[-1] if out.strip() else "")
        result["simulator"] = stats
        time.sleep(5)  # the central system projects what arrived last
    finally:
        for s in sims:
            if s.poll() is None:
                s.kill()
        central.send_signal(signal.SIGINT)
        try:
            central.wait(30)
        except subprocess.TimeoutExpired:
            central.kill()
    con = sqlite3.connect(db)
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    # The journal of a SQLite file is in segment files beside it; an older database's rows
    # stay in the table (both counted).
    records = journal_records(db)
    mark = q("SELECT COALESCE((SELECT upto FROM journal_watermark WHERE id = 1), 0)")
    projected = dict(con.execute("SELECT charger, upto FROM journal_projected").fetchall())
    aside = {r[0] for r in con.execute("SELECT id FROM journal_aside").fetchall()}
    result["db"] = {
        "sessions": q("SELECT COUNT(*) FROM sessions"),
        "sessions_completed": q("SELECT COUNT(*) FROM sessions WHERE status = 'completed'"),
        "sessions_active": q("SELECT COUNT(*) FROM sessions WHERE status = 'active'"),
        "journal_messages": q("SELECT COUNT(*) FROM journal") + len(records),
        # What a start would replay: past the low-water mark and past the charger's mark
        # (Db::journal_unprocessed).
        "journal_unprojected": q(
            "SELECT COUNT(*) FROM journal j LEFT JOIN journal_projected p ON p.charger = j.charger"
            " WHERE j.id > COALESCE((SELECT upto FROM journal_watermark WHERE id = 1), 0)"
            " AND j.processed = 0 AND j.id > COALESCE(p.upto, 0)")
        + sum(1 for i, charger in records
              if i > mark and i > projected.get(charger, 0) and i not in aside),
        # Rows linked to their session: where a session's meter samples are read from.
        "journal_linked": q("SELECT COUNT(*) FROM journal_sessions"),
        "journal_set_aside": q("SELECT COUNT(*) FROM journal WHERE processed = 2") + len(aside),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

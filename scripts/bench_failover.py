#!/usr/bin/env python3
"""Failover time of the deployment topology (a command that prints a table,
not a test), for each kind of shard: `scripts/cluster up` (two primaries,
each with a synchronous standby — `pgvshard shard` processes, or PostgreSQL +
pgvector with `--shards postgres` — Redis, the proxy on config/cluster.yaml
with failover_after_ms 3000), then, for each round:

- two writers (as the sample user `app`) insert rows through the proxy back to back (autocommit, keys
  spread over both shards), each remembering every acknowledged key; a reader
  runs `SELECT count(*)` every 5 ms;
- after a second, the primary of shard s0 is killed with SIGKILL;
- the round ends 2 s after writes to every shard flow again.

Per round it records the write stall (the longest wait of one writer between
two acknowledged writes, which spans the failover), errors seen by writers
and by the reader, and whether every acknowledged key is there afterwards.
Each round starts from a fresh cluster (`down`, a new directory, `up`). The
table has one row per kind of shard (`--shards pgvshard,postgres`, both by
default, in that order, in the same invocation).

    cargo build --release
    python3 scripts/bench_failover.py --rounds 20

Ports are taken from the environment as scripts/cluster documents; this
script sets free ones unless they are set.
"""

import argparse
import collections
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = os.path.join(REPO, "scripts", "cluster")
PORT_VARS = [
    "PGVSHARD_PORT", "PGVSHARD_METRICS_PORT", "PROMETHEUS_PORT", "REDIS_PORT",
    "PGVSHARD_S0_PORT", "PGVSHARD_S0_STANDBY_PORT", "PGVSHARD_S1_PORT",
    "PGVSHARD_S1_STANDBY_PORT", "PGVSHARD_S0_METRICS_PORT", "PGVSHARD_S1_METRICS_PORT",
    "PGVSHARD_S0_STANDBY_METRICS_PORT", "PGVSHARD_S1_STANDBY_METRICS_PORT",
]
# Where each kind of shard's s0 primary writes its pid (first line).
PID_FILE = {"pgvshard": ("run", "s0.pid"), "postgres": ("s0", "data", "postmaster.pid")}
WRITERS = 2
# A round gives up when writes have not resumed by then.
RESUME_DEADLINE_S = 60
# Acknowledged writes per writer after the kill that count as "resumed".
RESUMED_AFTER = 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster(*args):
    out = subprocess.run([CLUSTER, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"scripts/cluster {' '.join(args)} failed:\n{out.stdout}{out.stderr}")


def connect(port):
    return psycopg.connect(
        f"host=127.0.0.1 port={port} user=app password=app-secret dbname=postgres connect_timeout=5",
        autocommit=True,
    )


class Round:
    """One kill of s0's primary under a write and read load."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked = []  # (key, time)
        self.write_errors = collections.Counter()  # by SQLSTATE
        self.read_errors = collections.Counter()
        self.stalls = [0.0] * WRITERS

    def writer(self, w):
        conn, key, last = None, w, None
        while not self.stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = connect(self.port)
                conn.execute("INSERT INTO failover_items VALUES (%s, 'x')", (key,))
                now = time.monotonic()
                with self.lock:
                    self.acked.append((key, now))
                if last is not None:
                    self.stalls[w] = max(self.stalls[w], now - last)
                last = now
                key += WRITERS
            except psycopg.Error as e:
                with self.lock:
                    self.write_errors[e.sqlstate or "no SQLSTATE"] += 1
                # A write cut off by the kill may have committed all the
                # same (as with PostgreSQL): go on with the next key.
                key += WRITERS
                time.sleep(0.01)

    def reader(self):
        conn = connect(self.port)
        while not self.stop.is_set():
            try:
                conn.execute("SELECT count(*) FROM failover_items").fetchone()
            except psycopg.Error as e:
                self.read_errors[e.sqlstate or "no SQLSTATE"] += 1
                if conn.closed:
                    conn = connect(self.port)
            time.sleep(0.005)

    def run(self, kill):
        threads = [threading.Thread(target=self.writer, args=(w,)) for w in range(WRITERS)]
        threads.append(threading.Thread(target=self.reader))
        for t in threads:
            t.start()
        time.sleep(1.0)
        killed = time.monotonic()
        kill()
        # Writes flow again once each writer has had RESUMED_AFTER acks
        # after the kill: consecutive keys, so some of them are s0's (a
        # writer stalls on s0's keys until the new primary takes them).
        while True:
            with self.lock:
                after = [0] * WRITERS
                for key, at in self.acked:
                    if at > killed:
                        after[key % WRITERS] += 1
                resumed = min(after) >= RESUMED_AFTER
            if resumed or time.monotonic() - killed > RESUME_DEADLINE_S:
                break
            time.sleep(0.05)
        time.sleep(2.0)
        self.stop.set()
        for t in threads:
            t.join()
        return resumed

    def lost(self):
        conn = connect(self.port)
        present = {r[0] for r in conn.execute("SELECT id FROM failover_items")}
        return sum(1 for key, _ in self.acked if key not in present)


def percentile(sorted_values, p):
    return sorted_values[round((len(sorted_values) - 1) * p)]


def rounds(kind, base, count, port):
    """`count` rounds of killing s0's primary on `kind` shards."""
    results = []
    for r in range(count):
        state = os.path.join(base, f"{kind}-round{r}")
        shutil.rmtree(state, ignore_errors=True)
        cluster("up", state, "--shards", kind)
        try:
            with connect(port) as c:
                c.execute("CREATE TABLE failover_items (id bigint PRIMARY KEY, note text)")
            pid = int(open(os.path.join(state, *PID_FILE[kind])).readline())
            one = Round(port)
            resumed = one.run(lambda: os.kill(pid, signal.SIGKILL))
            lost = one.lost() if resumed else None
            results.append((max(one.stalls), one.write_errors, one.read_errors, len(one.acked), lost, resumed))
            print(f"{kind} round {r + 1}: stall {max(one.stalls) * 1000:.0f} ms, write errors {dict(one.write_errors)}, "
                  f"read errors {dict(one.read_errors)}, acknowledged {len(one.acked)}, lost {lost}",
                  file=sys.stderr, flush=True)
        finally:
            cluster("down", state)
            shutil.rmtree(state, ignore_errors=True)
    return results


def row(kind, results):
    """The table row of one kind of shard."""
    done = [x for x in results if x[5]]
    stalls = sorted(x[0] * 1000 for x in done)
    if not stalls:
        return f"| {kind} | 0/{len(results)} | - | - | - | - | - | - | - |"
    errors = lambda i: ", ".join(
        f"{n} × {code}" for code, n in sum((x[i] for x in done), collections.Counter()).items()) or "0"
    return (f"| {kind} | {len(done)}/{len(results)} | {percentile(stalls, 0.5):,.0f} | "
            f"{percentile(stalls, 0.99):,.0f} | {stalls[-1]:,.0f} | {errors(1)} | {errors(2)} | "
            f"{sum(x[3] for x in done):,} | {sum(x[4] for x in done)} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=20, help="kills per kind of shard")
    ap.add_argument("--shards", default="pgvshard,postgres", help="kinds of shard, in order")
    ap.add_argument("--dir", help="cluster state (default: a temporary directory)")
    args = ap.parse_args()
    kinds = args.shards.split(",")
    for kind in kinds:
        if kind not in PID_FILE:
            sys.exit(f"--shards: {kind!r} is neither pgvshard nor postgres")
    for var in PORT_VARS:
        os.environ.setdefault(var, str(free_port()))
    os.environ.setdefault("PGVSHARD_BIN", os.path.join(REPO, "target", "release", "pgvshard"))
    base = args.dir or tempfile.mkdtemp(prefix="pgvshard-failover-")
    os.chmod(base, 0o755)  # PostgreSQL runs as the postgres user under it
    port = int(os.environ["PGVSHARD_PORT"])
    results = {kind: rounds(kind, base, args.rounds, port) for kind in kinds}
    print(f"\nFailover of shard s0 (kill -9 of its primary), {args.rounds} rounds per kind of shard, "
          f"failover_after_ms 3000 (config/cluster.yaml); the stall is the failover time a writer sees\n")
    print("| shards | rounds resumed | stall p50 ms | stall p99 ms | stall max ms | write errors | read errors "
          "| acknowledged writes | lost |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind in kinds:
        print(row(kind, results[kind]))


if __name__ == "__main__":
    main()

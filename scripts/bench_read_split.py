#!/usr/bin/env python3
"""Read/write splitting over `pgvshard shard` standbys (a command that
prints a table, not a test). For 0, 1 and 2 standbys of one shard it starts
the primary, the standbys (`--standby-of`) and a proxy (`read_from:
standbys`, cache off) from the release binary, loads N rows of 32-d vectors,
and measures:

- read QPS: C clients through the proxy, each running a KNN query (LIMIT 10,
  exact) back to back for D seconds;
- read-your-writes: one client's latency of an UPDATE followed by a read of
  the same row (the read must reach a node that replayed the write), against
  the latency of the read alone in a session that has not written.

    cargo build --release
    python3 scripts/bench_read_split.py [--clients 4] [--seconds 5] [--rows 5000]
"""

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("PGVSHARD_BIN", os.path.join(REPO, "target", "release", "pgvshard"))
DIM = 32


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, deadline_s=60):
    end = time.time() + deadline_s
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def connect(port):
    return psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="db", autocommit=True)


def vec(rng):
    return "[" + ",".join(f"{rng.uniform(-1, 1):.4f}" for _ in range(DIM)) + "]"


def start(args, log):
    return subprocess.Popen([BIN, *args], stdout=subprocess.DEVNULL, stderr=log)


def run_setup(standbys, opts, work):
    procs = []
    log = open(os.path.join(work, f"s{standbys}.log"), "w")
    pport = free_port()
    procs.append(start(["shard", "--listen", f"127.0.0.1:{pport}", "--data-dir", os.path.join(work, f"p{standbys}")], log))
    wait_port(pport)
    rng = random.Random(7)
    with connect(pport) as c:
        c.execute(f"CREATE TABLE items (id int PRIMARY KEY, v int, embedding vector({DIM}))")
        for base in range(0, opts.rows, 500):
            rows = ",".join(f"({i}, 0, '{vec(rng)}')" for i in range(base, min(base + 500, opts.rows)))
            c.execute(f"INSERT INTO items VALUES {rows}")
    sports = []
    for i in range(standbys):
        port = free_port()
        conf = os.path.join(work, f"sb{standbys}-{i}.yaml")
        with open(conf, "w") as f:
            f.write(f"standby_of:\n  application_name: s0.standby{i + 1}\n")
        procs.append(start(["shard", "--listen", f"127.0.0.1:{port}", "--data-dir", os.path.join(work, f"sb{standbys}-{i}"),
                            "--standby-of", f"127.0.0.1:{pport}", "--config", conf], log))
        wait_port(port)
        sports.append(port)
    proxy_port = free_port()
    conf = os.path.join(work, f"proxy{standbys}.yaml")
    with open(conf, "w") as f:
        f.write(f"listen: 127.0.0.1:{proxy_port}\nshards:\n  - name: s0\n    port: {pport}\n")
        if sports:
            f.write("    standbys:\n" + "".join(f"      - host: 127.0.0.1\n        port: {p}\n" for p in sports))
        f.write("replication:\n  read_from: standbys\n  read_your_writes_wait_ms: 200\n  health_check_interval_ms: 100\n")
        f.write("cache:\n  enabled: false\n")
    procs.append(start(["proxy", "--config", conf], log))
    wait_port(proxy_port)
    # Every standby up (replayed the load) before measuring.
    end = time.time() + 60
    with connect(proxy_port) as c:
        while sports and time.time() < end:
            rows = c.execute("SHOW pgvshard.replicas").fetchall()
            if all(r[4] == "up" for r in rows):
                break
            time.sleep(0.1)
    return procs, proxy_port


def read_qps(port, opts):
    stop = threading.Event()
    counts = []
    queries = [vec(random.Random(100 + i)) for i in range(50)]

    def client(k):
        n = 0
        with connect(port) as c:
            c.execute("SET enable_indexscan = off")
            i = k
            while not stop.is_set():
                c.execute("SELECT id FROM items ORDER BY embedding <-> %s LIMIT 10", (queries[i % len(queries)],)).fetchall()
                n += 1
                i += 1
        counts.append(n)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(opts.clients)]
    for t in threads:
        t.start()
    time.sleep(opts.seconds)
    stop.set()
    for t in threads:
        t.join()
    return sum(counts) / opts.seconds


def ryw_latency(port, iterations):
    point = "SELECT v FROM items WHERE id = 1"
    with connect(port) as reader:
        alone = []
        for _ in range(iterations):
            t = time.perf_counter()
            reader.execute(point).fetchall()
            alone.append(time.perf_counter() - t)
    with connect(port) as writer:
        write_only, pair = [], []
        for i in range(iterations):
            t = time.perf_counter()
            writer.execute("UPDATE items SET v = %s WHERE id = 1", (i,))
            w = time.perf_counter()
            got = writer.execute(point).fetchone()[0]
            r = time.perf_counter()
            assert got == i, f"stale read: {got} after writing {i}"
            write_only.append(w - t)
            pair.append(r - w)
    ms = lambda xs: statistics.median(xs) * 1000
    p99 = lambda xs: sorted(xs)[int(len(xs) * 0.99)] * 1000
    return ms(alone), p99(alone), ms(write_only), ms(pair), p99(pair)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--iterations", type=int, default=500)
    opts = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    print(f"{opts.rows} rows of {DIM}-d vectors, {opts.clients} clients, exact KNN LIMIT 10, {opts.seconds:.0f} s per setup")
    print(f"{'standbys':>8} {'read QPS':>10} {'read p50 ms':>12} {'read p99':>9} {'write p50':>10} {'RYW read p50':>13} {'RYW read p99':>13}")
    for standbys in (0, 1, 2):
        with tempfile.TemporaryDirectory(prefix="pgvshard-split-") as work:
            procs, port = run_setup(standbys, opts, work)
            try:
                qps = read_qps(port, opts)
                a50, a99, w50, r50, r99 = ryw_latency(port, opts.iterations)
                print(f"{standbys:>8} {qps:>10.0f} {a50:>12.2f} {a99:>9.2f} {w50:>10.2f} {r50:>13.2f} {r99:>13.2f}")
            finally:
                for p in reversed(procs):
                    p.terminate()
                for p in procs:
                    p.wait()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark a running `pgvshard shard` through the protocol (a command that
prints a table, not a test), measured the way ../shared/benchmarks/anchors.md
measured PostgreSQL + pgvector:

- load: binary COPY of a shared dataset. The COPY payload is packed before the
  clock starts and written in large chunks, so the server, not the Python
  writer, is what is timed; rows/s and seconds are reported. Then the HNSW
  build time.
- KNN: `SELECT id FROM bench ORDER BY embedding <op> $1 LIMIT 10`, psycopg 3 +
  pgvector's register_vector, binary, server-side prepared, one query per round
  trip. Each setting: 200 warm-up queries, then 2 timed passes over the first
  1,000 queries, best QPS kept. "2 clients" = two PROCESSES, each its own
  connection running the same 1,000 queries, started on a barrier; aggregate
  QPS = 2,000 / wall time.
- with `--pid` (the shard's process id): the server's CPU time per query
  (user + system, from /proc), steadier than QPS on a shared machine.
- with `--metrics` (a pgvshard shard's /metrics address) as well: that CPU
  time split into the engine's (the ANN index searches,
  `pgvshard_shard_ann_search_cpu_seconds_total`), the recall monitor's exact
  runs (`pgvshard_recall_monitor_cpu_seconds_total`) and the rest (protocol,
  planning, output, the kernel's network work), all per query.

    pgvshard shard --listen 127.0.0.1:5433 --data-dir /tmp/bench \\
        --metrics-listen 127.0.0.1:9633 &
    python3 scripts/bench_shard.py --port 5433 --pid $! --metrics 127.0.0.1:9633 \\
        --dataset ../shared/datasets/fashion-mnist-784-euclidean --ef 10,20,40
"""

import argparse
import multiprocessing as mp
import os
import socket
import struct
import sys
import time
import typing
import urllib.request
from array import array

import psycopg
from pgvector.psycopg import register_vector

CHUNK = 1 << 20  # bytes per COPY write


def free_port():
    """A loopback port nothing listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, seconds=120):
    """Waits until something accepts on `port`; fails when `proc` exits first."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"process exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on {port} after {seconds} s")


def read_vecs(path):
    """texmex .fvecs / .bvecs: (dimension, rows as float32 arrays)."""
    data = open(path, "rb").read()
    (d,) = struct.unpack_from("<i", data, 0)
    if path.endswith(".bvecs"):
        rec = 4 + d
        return d, [array("f", list(data[i + 4 : i + rec])) for i in range(0, len(data), rec)]
    rec = 4 + 4 * d
    flat = array("f")
    flat.frombytes(data)
    if sys.byteorder != "little":
        flat.byteswap()
    return d, [flat[i // 4 + 1 : (i + rec) // 4] for i in range(0, len(data), rec)]


def read_ids(path, k=10):
    data = open(path, "rb").read()
    (d,) = struct.unpack_from("<i", data, 0)
    rec = 4 + 4 * d
    return [struct.unpack_from("<%di" % k, data, i + 4) for i in range(0, len(data), rec)]


def load_dataset(path, nq):
    ext = "bvecs" if os.path.exists(os.path.join(path, "base.bvecs")) else "fvecs"
    _, queries = read_vecs(os.path.join(path, f"query.{ext}"))
    gt = read_ids(os.path.join(path, "groundtruth.ivecs"))
    return ext, queries[:nq], gt[:nq]


def copy_payload(base, d):
    """The whole binary COPY stream: header, one (id bigint, vector) tuple per
    row with floats in network order, trailer."""
    head = struct.Struct(">hiqihh")
    parts = [b"PGCOPY\n\xff\r\n\0" + struct.pack(">ii", 0, 0)]
    for i, v in enumerate(base):
        be = array("f", v)
        if sys.byteorder == "little":
            be.byteswap()
        parts.append(head.pack(2, 8, i, 4 + 4 * d, d, 0))
        parts.append(be.tobytes())
    parts.append(struct.pack(">h", -1))
    return b"".join(parts)


def copy_binary(conn, table, payload):
    view = memoryview(payload)
    t0 = time.perf_counter()
    with conn.cursor().copy(f"COPY {table} (id, embedding) FROM STDIN (FORMAT binary)") as cp:
        for off in range(0, len(view), CHUNK):
            cp.write(view[off : off + CHUNK])
    return time.perf_counter() - t0


def connect(port):
    """A connection to a port on 127.0.0.1, or to a libpq connection string."""
    dsn = port if isinstance(port, str) else f"host=127.0.0.1 port={port} user=postgres dbname=db"
    conn = psycopg.connect(dsn, autocommit=True)
    register_vector(conn)
    return conn


def run_queries(cur, sql, queries, order):
    """Runs the queries in `order`; (ids per query, latencies in seconds)."""
    ids, lat = [], []
    for qi in order:
        t = time.perf_counter()
        cur.execute(sql, (queries[qi],), prepare=True)
        rows = cur.fetchall()
        lat.append(time.perf_counter() - t)
        ids.append([r[0] for r in rows])
    return ids, lat


def client(args):
    """One client process: warm up, wait on the barrier, time whole passes
    over the queries until `min_seconds` have passed (at least one). Also
    gives the process's own CPU seconds over the timed passes (the Python
    client's cost, the same for any server)."""
    port, dataset, nq, sql, ef, warmup, min_seconds, barrier = args
    _, queries, _ = load_dataset(dataset, nq)
    from pgvector import Vector

    queries = [Vector(list(q)) for q in queries]
    conn = connect(port)
    conn.execute(f"SET hnsw.ef_search = {ef}")
    with conn.cursor(binary=True) as cur:
        run_queries(cur, sql, queries, [i % len(queries) for i in range(warmup)])
        barrier.wait()
        t0, cpu = time.time(), time.process_time()
        ids, lat = run_queries(cur, sql, queries, range(len(queries)))
        while time.time() - t0 < min_seconds:
            lat += run_queries(cur, sql, queries, range(len(queries)))[1]
        t1, cpu = time.time(), time.process_time() - cpu
    conn.close()
    return t0, t1, lat, ids, cpu


def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name (state first)."""
    return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()


def cpu_seconds(pid):
    """User + system CPU seconds the process has used so far (None without --pid)."""
    if pid is None:
        return None
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def minor_faults(pid):
    """Minor page faults the process has taken so far (first touches of
    memory it had not used: what allocating fresh memory costs)."""
    return int(proc_stat(pid)[7])


CPU_COUNTERS = ("pgvshard_shard_ann_search_cpu_seconds_total", "pgvshard_recall_monitor_cpu_seconds_total")


def cpu_counters(metrics):
    """(engine, recall monitor) CPU seconds from the shard's /metrics (None without --metrics)."""
    if metrics is None:
        return None
    text = urllib.request.urlopen(f"http://{metrics}/metrics", timeout=10).read().decode()
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in CPU_COUNTERS:
            found[name] = float(value)
    return tuple(found.get(n, 0.0) for n in CPU_COUNTERS)


def recall_at_10(ids, gt):
    """Share of the true 10 nearest found, over the queries answered."""
    return sum(len(set(got) & set(want)) for got, want in zip(ids, gt)) / (10 * len(ids))


class Measured(typing.NamedTuple):
    """One timed cell."""

    recall: float
    qps: float
    p50_ms: float
    p99_ms: float
    #: The server's CPU µs per query (None without --pid), warm-up included.
    cpu: typing.Optional[float]
    #: That CPU split into (engine, recall monitor, rest) µs per query, or None.
    split: typing.Optional[tuple]
    #: Queries timed, over all clients.
    queries: int
    #: The client processes' own CPU µs per timed query.
    client_cpu: float


def measure(pool, barrier, a, sql, ef, clients, gt):
    """One timed cell with `clients` processes."""
    work = [(a.port, a.dataset, a.nq, sql, ef, a.warmup, a.min_seconds, barrier)] * clients
    m0 = cpu_counters(a.metrics)
    c0 = cpu_seconds(a.pid)
    res = pool.map(client, work)
    c1 = cpu_seconds(a.pid)
    m1 = cpu_counters(a.metrics)
    n = sum(len(r[2]) for r in res)
    wall = max(r[1] for r in res) - min(r[0] for r in res)
    lat = sorted(x for r in res for x in r[2])
    ids = res[0][3]
    queries = n + a.warmup * clients
    cpu = None if c0 is None else (c1 - c0) / queries * 1e6
    split = None
    if cpu is not None and m0 is not None:
        engine, recall = ((y - x) / queries * 1e6 for x, y in zip(m0, m1))
        split = (engine, recall, cpu - engine - recall)
    return Measured(recall_at_10(ids, gt), n / wall, lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3,
                    cpu, split, n, sum(r[4] for r in res) / n * 1e6)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--pid", type=int, help="the shard's process id, for its CPU time per query")
    ap.add_argument("--metrics", help="the shard's /metrics address (HOST:PORT), to split its CPU time")
    ap.add_argument("--ef", default="10,20,40,80")
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--min-seconds", type=float, default=0.0,
                    help="repeat whole passes over the queries until this long has passed")
    ap.add_argument("--repeats", type=int, default=2, help="timed passes per setting, best QPS kept")
    ap.add_argument("--clients", default="1,2")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--skip-load", action="store_true", help="reuse the loaded table and index")
    a = ap.parse_args()
    name = os.path.basename(a.dataset.rstrip("/"))
    ext, _, gt = load_dataset(a.dataset, a.nq)
    cosine = "cosine" in name
    op, opclass = ("<=>", "vector_cosine_ops") if cosine else ("<->", "vector_l2_ops")
    conn = connect(a.port)
    if not a.skip_load:
        d, base = read_vecs(os.path.join(a.dataset, f"base.{ext}"))
        payload = copy_payload(base, d)
        conn.execute("DROP TABLE IF EXISTS bench")
        conn.execute(f"CREATE TABLE bench (id bigint PRIMARY KEY, embedding vector({d}))")
        c0 = cpu_seconds(a.pid)
        load = copy_binary(conn, "bench", payload)
        c1 = cpu_seconds(a.pid)
        cpu = "" if c0 is None else f", server CPU {c1 - c0:.2f} s"
        t0 = time.perf_counter()
        conn.execute(
            f"CREATE INDEX bench_hnsw ON bench USING hnsw (embedding {opclass}) "
            f"WITH (m = {a.m}, ef_construction = {a.ef_construction})"
        )
        build = time.perf_counter() - t0
        print(f"{name}: {len(base)} rows, COPY {load:.2f} s ({len(base) / load:,.0f} rows/s{cpu}), "
              f"HNSW build {build:.1f} s (m={a.m}, ef_construction={a.ef_construction})")
    conn.close()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    sql = f"SELECT id FROM bench ORDER BY embedding {op} %s LIMIT 10"
    print("| ef_search | clients | recall@10 | QPS | p50 ms | p99 ms | server CPU µs/query "
          "| engine µs/query | recall monitor µs/query | rest µs/query |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    ctx = mp.get_context("spawn")
    with ctx.Manager() as mgr:
        for clients in [int(x) for x in a.clients.split(",")]:
            barrier = mgr.Barrier(clients)
            with ctx.Pool(clients) as pool:
                for ef in [int(x) for x in a.ef.split(",")]:
                    runs = [measure(pool, barrier, a, sql, ef, clients, gt) for _ in range(a.repeats)]
                    r, qps, p50, p99, cpu, split = max(runs, key=lambda x: x.qps)[:6]
                    cpu = "" if cpu is None else f"{cpu:.0f}"
                    split = " | ".join("" if split is None else f"{x:.0f}" for x in split or (None,) * 3)
                    print(f"| {ef} | {clients} | {r:.3f} | {qps:,.0f} | {p50:.2f} | {p99:.2f} | {cpu} | {split} |",
                          flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

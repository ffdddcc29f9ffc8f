#!/usr/bin/env python3
"""Benchmark a running `pgvshard shard` through the protocol (a command that
prints a table, not a test): binary COPY load rate of a shared dataset, HNSW
build time, then recall@10, QPS and p50/p99 latency for 1 and 2 clients
with prepared statements and binary vectors (psycopg + pgvector, as the
anchors in ../shared/benchmarks/anchors.md were measured).

    pgvshard shard --listen 127.0.0.1:5433 --data-dir /tmp/bench &
    python3 scripts/bench_shard.py --port 5433 \\
        --dataset ../shared/datasets/fashion-mnist-784-euclidean --ef 10,20,40
"""

import argparse
import os
import struct
import threading
import time

import psycopg
from pgvector import Vector
from pgvector.psycopg import register_vector


def read_vectors(path):
    """texmex .fvecs / .bvecs as lists of floats."""
    elem, fmt = (1, "B") if path.endswith(".bvecs") else (4, "f")
    data = open(path, "rb").read()
    (d,) = struct.unpack_from("<i", data, 0)
    rec = 4 + d * elem
    unpack = struct.Struct("<%d%s" % (d, fmt)).unpack_from
    return [list(unpack(data, i + 4)) for i in range(0, len(data), rec)]


def read_ids(path, k=10):
    data = open(path, "rb").read()
    (d,) = struct.unpack_from("<i", data, 0)
    rec = 4 + 4 * d
    return [struct.unpack_from("<%di" % k, data, i + 4) for i in range(0, len(data), rec)]


def copy_binary(conn, table, base):
    d = len(base[0])
    row = struct.Struct(">hiqihh%df" % d)
    t0 = time.perf_counter()
    with conn.cursor().copy(f"COPY {table} (id, embedding) FROM STDIN (FORMAT binary)") as cp:
        cp.write(b"PGCOPY\n\xff\r\n\0" + struct.pack(">ii", 0, 0))
        for i, v in enumerate(base):
            cp.write(row.pack(2, 8, i, 4 + 4 * d, d, 0, *v))
        cp.write(struct.pack(">h", -1))
    return time.perf_counter() - t0


def run(port, sql, queries, gt, ef, clients, nq):
    lat, hits, lock = [], [0], threading.Lock()

    def worker(part):
        conn = psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=db", autocommit=True)
        register_vector(conn)
        conn.execute(f"SET hnsw.ef_search = {ef}")
        mine, found = [], 0
        with conn.cursor(binary=True) as cur:
            for qi in part:
                t = time.perf_counter()
                cur.execute(sql, (Vector(queries[qi]),), prepare=True)
                ids = [r[0] for r in cur.fetchall()]
                mine.append(time.perf_counter() - t)
                found += len(set(ids) & set(gt[qi]))
        with lock:
            lat.extend(mine)
            hits[0] += found

    parts = [list(range(nq))[c::clients] for c in range(clients)]
    for p in parts:  # warm-up: one pass of the first queries
        worker(p[:50])
    lat.clear()
    hits[0] = 0
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(p,)) for p in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat.sort()
    return hits[0] / (10 * nq), nq / wall, lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--ef", default="10,20,40,80")
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=64)
    a = ap.parse_args()
    name = os.path.basename(a.dataset.rstrip("/"))
    ext = "bvecs" if os.path.exists(os.path.join(a.dataset, "base.bvecs")) else "fvecs"
    base = read_vectors(os.path.join(a.dataset, f"base.{ext}"))
    queries = read_vectors(os.path.join(a.dataset, f"query.{ext}"))
    gt = read_ids(os.path.join(a.dataset, "groundtruth.ivecs"))
    cosine = "cosine" in name
    op, opclass = ("<=>", "vector_cosine_ops") if cosine else ("<->", "vector_l2_ops")
    conn = psycopg.connect(f"host=127.0.0.1 port={a.port} user=postgres dbname=db", autocommit=True)
    conn.execute("DROP TABLE IF EXISTS bench")
    conn.execute(f"CREATE TABLE bench (id bigint PRIMARY KEY, embedding vector({len(base[0])}))")
    load = copy_binary(conn, "bench", base)
    t0 = time.perf_counter()
    conn.execute(
        f"CREATE INDEX bench_hnsw ON bench USING hnsw (embedding {opclass}) "
        f"WITH (m = {a.m}, ef_construction = {a.ef_construction})"
    )
    build = time.perf_counter() - t0
    print(f"{name}: {len(base)} rows, COPY {load:.1f} s ({len(base) / load:,.0f} rows/s), "
          f"HNSW build {build:.1f} s (m={a.m}, ef_construction={a.ef_construction})")
    sql = f"SELECT id FROM bench ORDER BY embedding {op} %s LIMIT 10"
    print("| ef_search | clients | recall@10 | QPS | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for ef in [int(x) for x in a.ef.split(",")]:
        for clients in (1, 2):
            r, qps, p50, p99 = run(a.port, sql, queries, gt, ef, clients, a.nq)
            print(f"| {ef} | {clients} | {r:.3f} | {qps:,.0f} | {p50:.2f} | {p99:.2f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Instruction counts per KNN query of a `pgvshard shard` or a `pgvshard
proxy` (a measuring tool that prints a table, not a test).

Wall-clock figures on a shared 2-vCPU machine cannot resolve differences of
~10 µs; instruction counts repeat under load. This script:

1. starts a release `pgvshard shard` natively on a temporary data directory
   (or `--data-dir`, reused when it already holds the table), loads the
   dataset by binary COPY and builds HNSW m=16 ef_construction=64;
2. runs the measured process under `valgrind --tool=callgrind`: the shard
   itself (`--through shard`, restarted on the same data directory), or a
   proxy in front of the native shard (`--through proxy`, one shard);
3. sends `--warmup` KNN queries with psycopg 3 (binary, `SET
   hnsw.ef_search`), zeroes the counters (`callgrind_control -z`), sends
   `--queries` more, dumps (`callgrind_control -d`);
4. prints the process's instructions per query and the `--top` functions
   by inclusive instructions per query (`callgrind_annotate --inclusive=yes`);
   with `--footprint` (valgrind's `--dump-instr=yes`) also the code a query
   runs: the distinct instructions executed at least once per query on
   average and the 64-byte cache lines they occupy, by function. A path
   whose code and data are evicted between two queries (the shard's search
   runs between them on the same cores) pays a cache miss per line, so
   this, more than the instruction count, bounds its wall time.

`--protocol prepared` sends Bind/Execute of a named statement (psycopg's
`prepare=True`); `unnamed` sends Parse/Bind/Describe/Execute each time, as
`pgvshard bench proxy` and many drivers do. Valgrind hides AVX-512, so the
engine runs its portable kernels: compare the counts outside the engine.

    cargo build --release
    python3 scripts/callgrind_query.py --through proxy \\
        --dataset ../shared/datasets/pypi-minilm-384-cosine --data-dir /tmp/cg-data
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import psycopg
from pgvector import Vector
from pgvector.psycopg import register_vector

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_shard import copy_binary, copy_payload, free_port, read_vecs, wait_port  # noqa: E402

OPS = {"cosine": ("<=>", "vector_cosine_ops"), "euclidean": ("<->", "vector_l2_ops")}


def connect(port):
    conn = psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=db", autocommit=True)
    register_vector(conn)
    return conn


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def load(port, dataset, op_class):
    """Creates and fills `bench` unless it exists; builds its HNSW index."""
    conn = connect(port)
    exists = conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'bench'").fetchone()[0]
    if exists:
        conn.close()
        return
    ext = "bvecs" if os.path.exists(os.path.join(dataset, "base.bvecs")) else "fvecs"
    d, base = read_vecs(os.path.join(dataset, f"base.{ext}"))
    conn.execute(f"CREATE TABLE bench (id bigint PRIMARY KEY, embedding vector({d}))")
    copy_binary(conn, "bench", copy_payload(base, d))
    conn.execute(f"CREATE INDEX ON bench USING hnsw (embedding {op_class}) WITH (m = 16, ef_construction = 64)")
    conn.close()


def queries_of(dataset):
    ext = "bvecs" if os.path.exists(os.path.join(dataset, "base.bvecs")) else "fvecs"
    _, qs = read_vecs(os.path.join(dataset, f"query.{ext}"))
    return [Vector(list(q)) for q in qs]


def footprint(dump, queries, top):
    """(distinct instructions, distinct 64-byte lines, [(lines, function)])
    of the code executed at least once per query on average, read from a
    dump written with --dump-instr=yes (positions: address, then line)."""
    names, per_addr, fn_of_line = {}, {}, {}
    addr, fn, after_calls = 0, None, False
    for line in open(dump):
        head = line[:1]
        if head.isdigit() or head in "+-*":
            fields = line.split()
            pos = fields[0]
            if pos[0] in "+-":
                step = int(pos[1:], 0)
                addr += step if pos[0] == "+" else -step
            elif pos != "*":
                addr = int(pos, 0)
            if after_calls:
                # The cost line after calls= is the callee's inclusive cost.
                after_calls = False
                continue
            if len(fields) > 2:
                per_addr[addr] = per_addr.get(addr, 0) + int(fields[2])
                fn_of_line.setdefault(addr >> 6, fn)
        elif line.startswith("calls="):
            after_calls = True
        else:
            m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?", line)
            if m:
                if m.group(3):
                    names[m.group(2)] = m.group(3).strip()
                if m.group(1) == "fn":
                    fn = names.get(m.group(2), m.group(2))
    hot = [a for a, n in per_addr.items() if n >= queries]
    lines = {a >> 6 for a in hot}
    by_fn = {}
    for l in lines:
        name = fn_of_line.get(l) or "?"
        by_fn[name] = by_fn.get(name, 0) + 1
    ranked = sorted(((n, f) for f, n in by_fn.items()), reverse=True)
    return len(hot), len(lines), ranked[:top]


def annotate(out_file, queries, top):
    """(total Ir per query, [(Ir per query, function)]) from a callgrind dump."""
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", f"--threshold=100", out_file],
        capture_output=True, text=True, check=True,
    ).stdout
    total = None
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(PROGRAM TOTALS|\S.*)$", line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", "")) / queries
        if m.group(2) == "PROGRAM TOTALS":
            total = ir
        else:
            rows.append((ir, m.group(2)))
    return total, rows[:top]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exe", default="target/release/pgvshard")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--data-dir", help="the shard's data directory (kept; loaded once)")
    ap.add_argument("--through", choices=["shard", "proxy"], default="shard")
    ap.add_argument("--protocol", choices=["prepared", "unnamed"], default="prepared")
    ap.add_argument("--ef", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--out", help="keep the callgrind dump here")
    ap.add_argument("--footprint", action="store_true", help="also the code lines a query runs (--dump-instr=yes)")
    a = ap.parse_args()

    metric = "cosine" if "cosine" in a.dataset else "euclidean"
    op, op_class = OPS[metric]
    work = tempfile.mkdtemp(prefix="pgvshard-callgrind-")
    data = a.data_dir or os.path.join(work, "data")
    shard_port = free_port()
    shard_cmd = [a.exe, "shard", "--listen", f"127.0.0.1:{shard_port}", "--data-dir", data]
    procs = []
    try:
        shard = subprocess.Popen(shard_cmd, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "shard.log"), "w"))
        procs.append(shard)
        wait_port(shard_port, shard)
        load(shard_port, a.dataset, op_class)
        out_file = a.out or os.path.join(work, "callgrind.out")
        valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}"]
        if a.footprint:
            valgrind.append("--dump-instr=yes")
        if a.through == "shard":
            stop(shard)
            shard = subprocess.Popen(valgrind + shard_cmd, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "shard.log"), "a"))
            procs = [shard]
            measured, port = shard, shard_port
        else:
            port = free_port()
            config = os.path.join(work, "proxy.yaml")
            with open(config, "w") as f:
                f.write(
                    f"listen: 127.0.0.1:{port}\ndata_dir: {os.path.join(work, 'proxy')}\nshards:\n"
                    f"  - name: s0\n    kind: postgres\n    host: 127.0.0.1\n    port: {shard_port}\n"
                )
            measured = subprocess.Popen(valgrind + [a.exe, "proxy", "--config", config], stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "proxy.log"), "w"))
            procs.append(measured)
        wait_port(port, measured, 300)
        qs = queries_of(a.dataset)
        sql = f"SELECT id FROM bench ORDER BY embedding {op} %s LIMIT 10"
        conn = connect(port)
        conn.execute(f"SET hnsw.ef_search = {a.ef}")
        prepare = a.protocol == "prepared"
        with conn.cursor(binary=True) as cur:
            for i in range(a.warmup):
                cur.execute(sql, (qs[i % len(qs)],), prepare=prepare)
                cur.fetchall()
            subprocess.run(["callgrind_control", "-z", str(measured.pid)], check=True, capture_output=True)
            for i in range(a.queries):
                cur.execute(sql, (qs[(a.warmup + i) % len(qs)],), prepare=prepare)
                cur.fetchall()
            subprocess.run(["callgrind_control", "-d", str(measured.pid)], check=True, capture_output=True)
        conn.close()
        dumps = sorted(
            (f for f in os.listdir(os.path.dirname(out_file)) if f.startswith(os.path.basename(out_file)) and f != os.path.basename(out_file)),
            key=lambda f: os.path.getmtime(os.path.join(os.path.dirname(out_file), f)),
        )
        if not dumps:
            raise SystemExit("callgrind wrote no dump")
        dump = os.path.join(os.path.dirname(out_file), dumps[-1])
        total, rows = annotate(dump, a.queries, a.top)
        print(f"{a.through}, {a.protocol} statements, ef_search {a.ef}, {a.queries} queries after {a.warmup} warm-up; dump {dump}\n")
        print(f"instructions per query, whole process: {total:,.0f}\n")
        print("| Ir/query (inclusive) | function |")
        print("|---|---|")
        for ir, name in rows:
            print(f"| {ir:,.0f} | {name[:160]} |")
        if a.footprint:
            instrs, lines, by_fn = footprint(dump, a.queries, a.top)
            print(f"\ncode run per query (instructions executed at least once per query on average): {instrs:,} instructions on {lines:,} cache lines of 64 bytes ({lines * 64 / 1024:.0f} KiB)\n")
            print("| lines | function |")
            print("|---|---|")
            for n, name in by_fn:
                print(f"| {n} | {name[:160]} |")
    finally:
        for p in reversed(procs):
            stop(p)
        if not a.out:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""COPY FROM STDIN into pgvshard builds, side by side in one invocation (a
benchmark command that prints a table, not a test).

For each `--exe` (e.g. an older and a newer release build) starts a
`pgvshard shard` (`--through shard`) or the embedded proxy with its four
in-process shards (`--through embedded`), then per round and build, in
alternating order: a fresh `bench (id bigint PRIMARY KEY, embedding
vector(d))` table and one COPY of the whole dataset, written in 1 MiB pieces
by psycopg, in binary (bench_shard.py's payload) or text format, packed before
the clock starts. Prints per build the median (min–max) wall time, the
server process's CPU time (user + system from /proc) and its minor page
faults per COPY, and each round's CPU and faults (the first COPY into a
fresh process touches memory the later ones reuse): on a busy machine CPU
time and faults are steadier than wall time.

    python3 scripts/bench_copy.py --exe /tmp/old/pgvshard --exe target/release/pgvshard \\
        --dataset ../shared/datasets/pypi-minilm-384-cosine --format text
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_shard import (  # noqa: E402
    CHUNK, connect, copy_payload, cpu_seconds, free_port, minor_faults, read_vecs, wait_port,
)


def text_payload(base):
    return "".join(f"{i}\t[{','.join(repr(float(x)) for x in v)}]\n" for i, v in enumerate(base)).encode()


class Server:
    def __init__(self, exe, through, work):
        self.port = free_port()
        data = os.path.join(work, "data")
        if through == "shard":
            cmd = [exe, "shard", "--listen", f"127.0.0.1:{self.port}", "--data-dir", data]
        else:
            cmd = [exe, "--listen", f"127.0.0.1:{self.port}", "--data-dir", data,
                   "--metrics-listen", f"127.0.0.1:{free_port()}"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(work, "server.log"), "w"))
        wait_port(self.port)

    def copy(self, d, payload, fmt, expected):
        """(wall seconds, server CPU seconds, server minor page faults) of one
        COPY into a fresh table."""
        conn = connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=db")
        conn.execute("DROP TABLE IF EXISTS bench")
        conn.execute(f"CREATE TABLE bench (id bigint PRIMARY KEY, embedding vector({d}))")
        sql = "COPY bench (id, embedding) FROM STDIN" + (" (FORMAT binary)" if fmt == "binary" else "")
        view = memoryview(payload)
        pid = self.proc.pid
        cpu, faults, t0 = cpu_seconds(pid), minor_faults(pid), time.perf_counter()
        with conn.cursor().copy(sql) as cp:
            for off in range(0, len(view), CHUNK):
                cp.write(view[off:off + CHUNK])
        wall = time.perf_counter() - t0
        cpu, faults = cpu_seconds(pid) - cpu, minor_faults(pid) - faults
        rows = conn.execute("SELECT count(*) FROM bench").fetchone()[0]
        conn.close()
        if rows != expected:
            raise SystemExit(f"COPY loaded {rows} rows, not {expected}")
        return wall, cpu, faults

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def spread(xs, fmt="{:.2f}"):
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exe", action="append", required=True, help="a pgvshard binary (repeatable)")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--format", choices=["binary", "text"], default="binary")
    ap.add_argument("--through", choices=["shard", "embedded"], default="shard")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    ext = "bvecs" if os.path.exists(os.path.join(a.dataset, "base.bvecs")) else "fvecs"
    d, base = read_vecs(os.path.join(a.dataset, f"base.{ext}"))
    payload = text_payload(base) if a.format == "text" else copy_payload(base, d)
    print(f"{os.path.basename(a.dataset.rstrip('/'))}: {len(base):,} rows x {d}, {a.format} COPY through "
          f"{a.through}, {a.rounds} rounds; load average at start {os.getloadavg()[0]:.2f}")
    work = tempfile.mkdtemp(prefix="pgvshard-copy-")
    servers = []
    try:
        for i, exe in enumerate(a.exe):
            os.makedirs(os.path.join(work, str(i)))
            servers.append((exe, Server(exe, a.through, os.path.join(work, str(i)))))
        runs = {exe: [] for exe in a.exe}
        for r in range(a.rounds):
            order = servers if r % 2 == 0 else servers[::-1]
            for exe, server in order:
                runs[exe].append(server.copy(d, payload, a.format, len(base)))
        print(f"load average at end {os.getloadavg()[0]:.2f}\n")
        print(f"| {a.format} | wall s | server CPU s | server minor faults | CPU s by round | faults by round |")
        print("|---|---|---|---|---|---|")
        for exe in a.exe:
            walls, cpus, faults = zip(*runs[exe])
            print(f"| {exe} | {spread(walls)} | {spread(cpus)} | {spread(faults, '{:,.0f}')} | "
                  f"{' / '.join(f'{c:.2f}' for c in cpus)} | {' / '.join(f'{f:,}' for f in faults)} |")
    finally:
        for _, server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

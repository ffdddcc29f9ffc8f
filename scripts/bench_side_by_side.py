#!/usr/bin/env python3
"""Our HNSW engine next to hnswlib and FAISS HNSW, in ONE invocation on one
machine (a command that prints a table, not a test).

The CPU changes between sessions, so a speed ratio counts only when both sides
ran in the same run. Each round runs every system once, in a rotating order
(ours via `pgvshard bench ann --json`, a release build; the peers in this
process through their PyPI packages), over the same queries and the same
ground truth. Every system gets the same single-thread measurement: 200
warm-up queries, then the best of two timed passes over the first `--nq`
queries, one query per call. The peers' per-call figure includes Python's
call overhead (a few µs), so their one-call-for-all-queries figure (one
thread, no per-query overhead) is measured too, and the ratio is taken
against whichever of the two is faster.

Each pass is timed twice: by the wall clock (QPS) and by the searching
thread's CPU time (CPU QPS: queries per CPU second). On a machine where
other processes compete for the cores, wall QPS also counts the time a
search waits for a core, CPU QPS does not; both ratios are printed.

Per system and ef the table gives the median over rounds (spread = min-max).
At each recall target every system is taken at its lowest ef whose median
recall reaches it; the ratio to the faster peer is computed within each round
and reported as the median (min-max) over rounds.

    pip install hnswlib faiss-cpu numpy
    cargo build --release
    python3 scripts/bench_side_by_side.py --rounds 3 \\
        --dataset ../shared/datasets/fashion-mnist-784-euclidean \\
        --dataset ../shared/datasets/pypi-minilm-384-cosine
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

M, EFC = 16, 64
WARMUP, PASSES = 200, 2
DEFAULT_EF = "10,12,14,16,20,24,32,40,48,64,80,96,128,160,200,240,320"
TARGETS = (0.95, 0.99)


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.uint8)
    d = int(raw[:4].view("<i4")[0])
    rec = raw.reshape(-1, 4 + d * np.dtype(dtype).itemsize)
    return rec[:, 4:].copy().view(dtype).reshape(-1, d)


def load(path, nq):
    name = os.path.basename(os.path.normpath(path))
    metric = "l2" if name.endswith("-euclidean") else "cosine"
    if os.path.exists(os.path.join(path, "base.bvecs")):
        base = read_vecs(os.path.join(path, "base.bvecs"), np.uint8).astype(np.float32)
        queries = read_vecs(os.path.join(path, "query.bvecs"), np.uint8).astype(np.float32)
    else:
        base = read_vecs(os.path.join(path, "base.fvecs"), "<f4")
        queries = read_vecs(os.path.join(path, "query.fvecs"), "<f4")
    gt = read_vecs(os.path.join(path, "groundtruth.ivecs"), "<i4")[:nq, :10]
    return name, metric, np.ascontiguousarray(base), np.ascontiguousarray(queries[:nq]), gt


def recall(found, gt):
    return float(np.mean([len(set(map(int, f)) & set(map(int, g))) / 10 for f, g in zip(found, gt)]))


def timed(run, n):
    """Runs `run()` PASSES times; (best wall QPS, best CPU QPS, last result)
    for `n` queries a pass (CPU: the calling thread's, where single-thread
    searches run)."""
    wall = cpu = 0.0
    out = None
    for _ in range(PASSES):
        c0, t0 = time.thread_time(), time.perf_counter()
        out = run()
        t1, c1 = time.perf_counter(), time.thread_time()
        wall = max(wall, n / (t1 - t0))
        cpu = max(cpu, n / max(c1 - c0, 1e-9))
    return wall, cpu, out


def time_per_call(one, queries):
    for i in range(min(WARMUP, len(queries))):
        one(queries[i:i + 1])
    return timed(lambda: [one(queries[i:i + 1]) for i in range(len(queries))], len(queries))


def time_batch(batch, queries):
    wall, cpu, _ = timed(lambda: batch(queries), len(queries))
    return wall, cpu


class Hnswlib:
    name = "hnswlib"

    def __init__(self, metric, base):
        import hnswlib
        self.index = hnswlib.Index(space="l2" if metric == "l2" else "cosine", dim=base.shape[1])
        self.index.init_index(max_elements=len(base), ef_construction=EFC, M=M, random_seed=100)
        t0 = time.perf_counter()
        self.index.add_items(base, np.arange(len(base)), num_threads=2)
        self.build_s = time.perf_counter() - t0
        self.memory = self.index.index_file_size()

    def run(self, ef, queries):
        self.index.set_ef(ef)
        qps, cpu, found = time_per_call(lambda q: self.index.knn_query(q, k=10, num_threads=1)[0][0], queries)
        batch, batch_cpu = time_batch(lambda q: self.index.knn_query(q, k=10, num_threads=1), queries)
        return found, max(qps, batch), max(cpu, batch_cpu)


class FaissHnsw:
    name = "faiss"

    def __init__(self, metric, base):
        import faiss
        self.faiss = faiss
        self.cosine = metric == "cosine"
        if self.cosine:
            base = base / np.linalg.norm(base, axis=1, keepdims=True)
        mt = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
        self.index = faiss.IndexHNSWFlat(base.shape[1], M, mt)
        self.index.hnsw.efConstruction = EFC
        faiss.omp_set_num_threads(2)
        t0 = time.perf_counter()
        self.index.add(base)
        self.build_s = time.perf_counter() - t0
        faiss.omp_set_num_threads(1)
        self.memory = len(faiss.serialize_index(self.index))

    def run(self, ef, queries):
        if self.cosine:
            queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        self.faiss.omp_set_num_threads(1)
        self.index.hnsw.efSearch = ef
        qps, cpu, found = time_per_call(lambda q: self.index.search(q, 10)[1][0], queries)
        batch, batch_cpu = time_batch(lambda q: self.index.search(q, 10), queries)
        return found, max(qps, batch), max(cpu, batch_cpu)


class Ours:
    def __init__(self, binary, walk, path, efs, nq):
        self.name = f"pgvshard {walk}"
        self.cmd = [binary, "bench", "ann", "--dataset", path, "--index", "hnsw", "--m", str(M),
                    "--ef-construction", str(EFC), "--ef-search", ",".join(map(str, efs)),
                    "--queries", str(nq), "--threads", "2", "--walk", walk, "--json"]

    def round(self):
        """One build and one pass over every ef: {ef: row}."""
        out = subprocess.run(self.cmd, capture_output=True, text=True, check=True).stdout
        rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return {r["params"]["ef_search"]: r for r in rows}


def version(dist):
    from importlib.metadata import version as v
    return v(dist)


def median_spread(values):
    return statistics.median(values), min(values), max(values)


def fmt_spread(values, digits=0):
    med, lo, hi = median_spread(values)
    if digits:
        return f"{med:.{digits}f}"
    return f"{med:,.0f} ({lo:,.0f}-{hi:,.0f})"


def bench_dataset(path, a):
    name, metric, base, queries, gt = load(path, a.nq)
    print(f"\n## {name}: {len(base):,} x {base.shape[1]}, {metric}, {len(queries)} queries, "
          f"HNSW m={M} ef_construction={EFC}, {a.rounds} rounds", flush=True)
    ours = [Ours(a.binary, walk, path, a.ef, a.nq) for walk in a.walk]
    peers = [Hnswlib(metric, base), FaissHnsw(metric, base)]
    systems = ours + peers
    # results[system][ef] = list of (recall, qps, cpu_qps) per round; a
    # peer's QPS is the faster of per call and one call for all queries
    results = {s.name: {ef: [] for ef in a.ef} for s in systems}
    builds = {**{o.name: [] for o in ours}, **{p.name: [p.build_s] for p in peers}}
    memory = {p.name: p.memory for p in peers}
    index_only = {}
    for r in range(a.rounds):
        order = systems[r % len(systems):] + systems[:r % len(systems)]
        for s in order:
            t0 = time.perf_counter()
            if s in ours:
                rows = s.round()
                for ef in a.ef:
                    row = rows[ef]
                    results[s.name][ef].append((row["recall"], row["qps"], row["cpu_qps"]))
                any_row = next(iter(rows.values()))
                builds[s.name].append(any_row["build_s"])
                memory[s.name] = any_row["memory_bytes"] + len(base) * base.shape[1] * 4
                index_only[s.name] = any_row["memory_bytes"]
            else:
                for ef in a.ef:
                    found, qps, cpu = s.run(ef, queries)
                    results[s.name][ef].append((recall(found, gt), qps, cpu))
            print(f"  round {r + 1}: {s.name} {time.perf_counter() - t0:.0f}s", file=sys.stderr,
                  flush=True)

    print("\n| ef | " + " | ".join(f"{s} recall | {s} QPS | {s} CPU QPS" for s in results) + " |")
    print("|---|" + "---|---|---|" * len(results))
    for ef in a.ef:
        cells = []
        for s in results:
            runs = results[s][ef]
            rec = statistics.median(x[0] for x in runs)
            cells += [f"{rec:.4f}", fmt_spread([x[1] for x in runs]), fmt_spread([x[2] for x in runs])]
        print(f"| {ef} | " + " | ".join(cells) + " |")

    print("\nPeers' QPS is the faster of one query per call and one call for all queries "
          "(one thread either way).")
    print("\n| system | build s (2 threads) | memory MB |")
    print("|---|---|---|")
    for s in results:
        print(f"| {s} | {fmt_spread(builds[s], 2)} | {memory[s] / 2**20:.1f} |")
    for name, size in index_only.items():
        print(f"| {name}: index alone (the f32 vectors stay in the table) | | {size / 2**20:.1f} |")

    clocks = (("wall", 1), ("CPU", 2))
    print("\n| recall@10 | clock | " + " | ".join(results) + " | " +
          " | ".join(f"{o.name} / faster peer" for o in ours) + " |")
    print("|---|---|" + "---|" * (len(results) + len(ours)))
    for target in TARGETS:
        # Recall hardly moves between rounds, QPS does: each system is taken
        # at its lowest ef whose median recall reaches the target, and the
        # ratio is computed per round (ours and the peers measured minutes
        # apart), then its median and spread reported.
        chosen = {}
        for s in results:
            chosen[s] = next((ef for ef in a.ef
                              if statistics.median(x[0] for x in results[s][ef]) >= target), None)
        for clock, col in clocks:
            cells = []
            for s in results:
                ef = chosen[s]
                if ef is None:
                    cells.append("not reached")
                    continue
                runs = results[s][ef]
                qps = statistics.median(x[col] for x in runs)
                cells.append(f"{qps:,.0f} (ef {ef}, recall {statistics.median(x[0] for x in runs):.4f})")
            for o in ours:
                per_round = []
                for r in range(a.rounds):
                    peer = max((results[p.name][chosen[p.name]][r][col] for p in peers
                                if chosen[p.name] is not None), default=None)
                    if chosen[o.name] is not None and peer:
                        per_round.append(results[o.name][chosen[o.name]][r][col] / peer)
                cells.append("-" if not per_round else
                             f"**{statistics.median(per_round):.2f}x** "
                             f"({min(per_round):.2f}-{max(per_round):.2f})")
            print(f"| >= {target} | {clock} QPS | " + " | ".join(cells) + " |")
    print("\nRatio: per round, our QPS over the faster peer's at the lowest ef reaching the "
          "target; median (min-max) over rounds. Wall: queries per second of wall time; CPU: "
          "per CPU second of the searching thread (time spent waiting for a core on a busy "
          "machine left out).")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", action="append", required=True, help="dataset directory (repeatable)")
    ap.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "target",
                                                     "release", "pgvshard"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--ef", default=DEFAULT_EF)
    ap.add_argument("--walk", default="sq8",
                    help="our graph walks to run, comma-separated: sq8 (8-bit codes, exact re-rank), exact")
    a = ap.parse_args()
    a.ef = [int(x) for x in a.ef.split(",")]
    a.walk = a.walk.split(",")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
    simd = [f for f in flags if f.startswith(("avx512", "avx_vnni", "amx", "avx2", "f16c"))]
    print(f"# HNSW side by side, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"CPU: {cpu}, {os.cpu_count()} cores; SIMD: {' '.join(simd)}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    print(f"pgvshard {commit} (release); hnswlib {version('hnswlib')}; faiss-cpu {version('faiss-cpu')}")
    print("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    for path in a.dataset:
        bench_dataset(path, a)
    print("\nload average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()

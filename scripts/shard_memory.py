"""Memory and disk of one `pgvshard shard` per stored vector, for sizing:
starts a shard on a fresh data directory, loads a texmex dataset's base
vectors into `items (id int PRIMARY KEY, v vector(D))` with COPY through
psql, builds an HNSW index (m 16, ef_construction 64, the defaults), and
prints the process's RSS and the data directory's size after each step as
a table row — last after a clean restart, the steady state without the
load's transient buffers.
Usage: python3 scripts/shard_memory.py target/release/pgvshard \\
           ../shared/datasets/pypi-minilm-384-cosine [ROWS]
(an `.fvecs` or `.bvecs` base file; cosine datasets get vector_cosine_ops)."""

import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

binary, dataset = sys.argv[1], sys.argv[2]
limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
name = os.path.basename(dataset.rstrip("/"))
base = next(
    os.path.join(dataset, f)
    for f in sorted(os.listdir(dataset))
    if f.startswith("base") and f.endswith(("fvecs", "bvecs"))
)
raw = np.fromfile(base, dtype=np.uint8)
dim = int(raw[:4].view(np.int32)[0])
elem = 4 if base.endswith("fvecs") else 1
rows = raw.reshape(-1, 4 + dim * elem)[:, 4:]
vectors = rows.view(np.float32) if elem == 4 else rows.astype(np.float32)
if limit:
    vectors = vectors[:limit]
opclass, operator = ("vector_cosine_ops", "<=>") if "cosine" in name else ("vector_l2_ops", "<->")

data = tempfile.mkdtemp(prefix="pgvshard-mem-")


def start():
    """Starts the shard on `data`; its process and port."""
    log = open(data + ".log", "w+")
    proc = subprocess.Popen(
        [binary, "shard", "--listen", "127.0.0.1:0", "--data-dir", data],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    for _ in range(6000):
        log.seek(0)
        m = re.search(r"pgvshard shard listening.*:(\d+)\s*$", log.read(), re.M)
        if m:
            return proc, m.group(1)
        time.sleep(0.05)
    raise SystemExit("the shard did not start")


shard, port = start()


def psql(sql, stdin=None):
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
         "-p", port, "-U", "postgres", "-d", "db", "-c", sql],
        input=stdin, check=True, text=True, stdout=subprocess.DEVNULL,
    )


def rss_mib():
    for line in open(f"/proc/{shard.pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024


def disk_mib():
    total = 0
    for root, _, files in os.walk(data):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total / (1 << 20)


n = len(vectors)
print(f"{name}: {n} rows x {dim}, {opclass}")
print("| step | RSS MiB | data dir MiB | seconds |")
print("|---|---|---|---|")
print(f"| empty | {rss_mib():.1f} | {disk_mib():.1f} | |")
psql(f"CREATE TABLE items (id int PRIMARY KEY, v vector({dim}))")
text = "".join(
    f"{i}\t[{','.join(f'{x:.6g}' for x in v)}]\n" for i, v in enumerate(vectors)
)
t = time.time()
psql("COPY items FROM STDIN", stdin=text)
print(f"| {n} rows loaded | {rss_mib():.1f} | {disk_mib():.1f} | {time.time() - t:.1f} |")
t = time.time()
psql(f"CREATE INDEX items_v ON items USING hnsw (v {opclass})")
print(f"| HNSW built | {rss_mib():.1f} | {disk_mib():.1f} | {time.time() - t:.1f} |")
# A clean stop (final checkpoint) and a start again: the steady state,
# without the load's transient buffers.
shard.terminate()
shard.wait()
t = time.time()
shard, port = start()
print(f"| restarted (recovered) | {rss_mib():.1f} | {disk_mib():.1f} | {time.time() - t:.1f} |")
query = ",".join(f"{x:.6g}" for x in vectors[0])
psql(f"SELECT id FROM items ORDER BY v {operator} '[{query}]' LIMIT 10")
print(f"| after a KNN query | {rss_mib():.1f} | {disk_mib():.1f} | |")
shard.terminate()
shard.wait()

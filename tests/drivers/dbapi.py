"""The scenario every DB-API driver (psycopg2, pg8000, psycopg 3) runs
after pgvector's `register_vector`: schema, single and bulk inserts, KNN
with every distance operator on vector, halfvec, sparsevec and bit (vectors
as text), filter + KNN, get (pgvector's Python types back), numpy arrays
and pgvector's types as parameters, update, delete, errors (the connection
goes on), a rolled-back and a committed transaction, drop."""

import random

import numpy as np
from pgvector import HalfVector, SparseVector

import scenario

SCHEMA = (
    "CREATE TABLE {t} (id bigint PRIMARY KEY, cat int, embedding vector(3), "
    "half halfvec(3), sparse sparsevec(5), bits bit(8))"
)


def rows_of(n, seed=11):
    rng = random.Random(seed)
    out = []
    for i in range(1, n + 1):
        v = [round(rng.uniform(-1, 1), 3) for _ in range(3)]
        text = "[" + ",".join(str(x) for x in v) + "]"
        sparse = "{1:%s,4:%s}/5" % (round(rng.uniform(-1, 1), 3), round(rng.uniform(-1, 1), 3))
        bits = "".join(rng.choice("01") for _ in range(8))
        out.append((i, i % 3, text, text, sparse, bits))
    return out


KNN = [
    ("embedding", "<->", "[0.1,0.2,0.3]"),
    ("embedding", "<#>", "[0.1,0.2,0.3]"),
    ("embedding", "<=>", "[0.1,0.2,0.3]"),
    ("embedding", "<+>", "[0.1,0.2,0.3]"),
    ("half", "<->", "[0.5,-0.5,0.25]"),
    ("half", "<=>", "[0.5,-0.5,0.25]"),
    ("sparse", "<->", "{1:0.5,4:-0.5}/5"),
    ("sparse", "<#>", "{1:0.5,4:-0.5}/5"),
    ("bits", "<~>", "10101010"),
    ("bits", "<%>", "10101010"),
]


def typed(conn, cur, steps, t):
    """numpy arrays and pgvector's types in, pgvector's types out."""
    embedding = np.array([0.5, -0.25, 2.0], dtype=np.float32)
    cur.execute(
        f"INSERT INTO {t} (id, cat, embedding, half, sparse) VALUES (%s, %s, %s, %s, %s)",
        (300, 0, embedding, HalfVector([1.5, 0, -2]), SparseVector({0: 1.0, 3: -2.5}, 5)),
    )
    conn.commit()
    cur.execute(f"SELECT embedding, half, sparse FROM {t} WHERE id = %s", (300,))
    row = cur.fetchone()
    steps.saw("typed get", [scenario.plain(v) for v in row])
    steps.saw("numpy round trip", np.array_equal(row[0].to_numpy(), embedding))
    cur.execute(
        f"SELECT id, embedding <-> %s AS d FROM {t} ORDER BY embedding <-> %s LIMIT 5",
        (embedding, embedding),
    )
    steps.saw("knn numpy", scenario.by_distance(cur.fetchall()))
    conn.commit()


def run(connect, register, sqlstate, steps, t):
    """`connect()` opens a connection (not autocommit), `register(conn)`
    runs pgvector's register_vector on it; `sqlstate(e)` reads a driver
    error's SQLSTATE."""
    conn = connect()
    register(conn)
    conn.commit()
    cur = conn.cursor()
    # DDL outside transaction blocks: inside one it needs two-phase commit
    # through the proxy (refused until then).
    conn.autocommit = True
    cur.execute(f"DROP TABLE IF EXISTS {t}")
    cur.execute(SCHEMA.format(t=t))
    conn.autocommit = False
    data = rows_of(30)
    cur.execute(f"INSERT INTO {t} VALUES (%s, %s, %s, %s, %s, %s::bit(8))", data[0])
    steps.saw("insert one", cur.rowcount)
    conn.commit()
    # Rows for several shards in one transaction need two-phase commit
    # through the proxy: the bulk insert commits row by row.
    conn.autocommit = True
    cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s, %s, %s, %s::bit(8))", data[1:])
    conn.autocommit = False
    cur.execute(f"SELECT count(*), sum(id) FROM {t}")
    steps.saw("count", cur.fetchone())
    for column, op, q in KNN:
        cast = "::bit(8)" if column == "bits" else ""
        escaped = op.replace("%", "%%")  # the format paramstyle's escape
        cur.execute(
            f"SELECT id, {column} {escaped} %s{cast} AS d FROM {t} "
            f"ORDER BY {column} {escaped} %s{cast} LIMIT 40",
            (q, q),
        )
        steps.saw(f"knn {column} {op}", scenario.by_distance(cur.fetchall()))
    cur.execute(
        f"SELECT id, embedding <-> %s AS d FROM {t} WHERE cat = %s ORDER BY embedding <-> %s LIMIT 4",
        ("[0,0,0]", 1, "[0,0,0]"),
    )
    steps.saw("filter + knn", scenario.by_distance(cur.fetchall()))
    cur.execute(f"SELECT id, cat, embedding, half, sparse, bits FROM {t} WHERE id = %s", (7,))
    steps.saw("get", [scenario.plain(v) for v in cur.fetchone()])
    cur.execute(f"SELECT embedding FROM {t} WHERE id = %s", (99,))
    steps.saw("get missing", cur.fetchone())
    typed(conn, cur, steps, t)
    cur.execute(f"UPDATE {t} SET embedding = %s WHERE id = %s", ("[1,1,1]", 7))
    steps.saw("update", cur.rowcount)
    conn.commit()
    conn.autocommit = True  # a DELETE on every shard, as the bulk insert
    cur.execute(f"DELETE FROM {t} WHERE cat = %s", (2,))
    steps.saw("delete", cur.rowcount)
    conn.autocommit = False

    def failing(sql, params=None):
        try:
            cur.execute(sql, params)
        except Exception as e:  # noqa: BLE001 - each driver's own class
            conn.rollback()
            return ("error", sqlstate(e))
        conn.rollback()
        return "no error"

    steps.saw("missing table", failing("SELECT * FROM dbapi_nosuchtable"))
    steps.saw("wrong dimensions", failing(f"INSERT INTO {t} (id, embedding) VALUES (%s, %s)", (100, "[1,2]")))
    steps.saw("duplicate key", failing(f"INSERT INTO {t} (id) VALUES (%s)", (1,)))
    steps.saw("syntax", failing("SELEC 1"))
    cur.execute(f"INSERT INTO {t} (id, cat) VALUES (%s, %s)", (200, 0))
    conn.rollback()
    cur.execute(f"INSERT INTO {t} (id, cat) VALUES (%s, %s)", (201, 0))
    conn.commit()
    cur.execute(f"SELECT id FROM {t} WHERE id >= %s ORDER BY id", (200,))
    steps.saw("transactions", cur.fetchall())
    conn.commit()
    conn.autocommit = True
    cur.execute(f"DROP TABLE {t}")
    conn.close()

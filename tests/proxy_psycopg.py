"""psycopg 3 with the pgvector package's register_vector through the
proxy (the embedded binary, four in-process shards): executemany of numpy
vectors, an HNSW index, KNN with <-> and <=> and parameters in text and
binary, server-side prepared statements (prepare_threshold=0), a
transaction, and an error after which the connection goes on. Every KNN
answer is checked against numpy's exact one. Usage: proxy_psycopg.py PORT"""

import sys

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

port = int(sys.argv[1])
dsn = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"

rng = np.random.default_rng(7)
data = rng.random((300, 8), dtype=np.float32)
queries = rng.random((5, 8), dtype=np.float32)


def exact(q, metric, k=5):
    if metric == "<->":
        d = np.linalg.norm(data - q, axis=1)
    else:
        d = 1 - (data @ q) / (np.linalg.norm(data, axis=1) * np.linalg.norm(q))
    return [int(i) for i in np.argsort(d, kind="stable")[:k]], d


conn = psycopg.connect(dsn, autocommit=True)
conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
register_vector(conn)
conn.execute("CREATE TABLE items (id bigint PRIMARY KEY, embedding vector(8))")
with conn.cursor() as cur:
    cur.executemany(
        "INSERT INTO items (id, embedding) VALUES (%s, %s)",
        [(i, v) for i, v in enumerate(data[:150])],
    )
with conn.cursor(binary=True) as cur:
    cur.executemany(
        "INSERT INTO items (id, embedding) VALUES (%s, %s)",
        [(150 + i, v) for i, v in enumerate(data[150:])],
    )
assert conn.execute("SELECT count(*) FROM items").fetchone() == (300,)
back = conn.execute("SELECT embedding FROM items WHERE id = 42").fetchone()[0]
assert np.array_equal(back.to_numpy(), data[42]), (back, data[42])
conn.execute("CREATE INDEX ON items USING hnsw (embedding vector_l2_ops) WITH (m = 16, ef_construction = 200)")
conn.execute("CREATE INDEX ON items USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 200)")
conn.execute("SET hnsw.ef_search = 200")


def check_knn(c, binary):
    for q in queries:
        for op in ("<->", "<=>"):
            with c.cursor(binary=binary) as cur:
                cur.execute(
                    f"SELECT id, embedding {op} %s AS d FROM items ORDER BY embedding {op} %s LIMIT %s",
                    (q, q, 5),
                )
                rows = cur.fetchall()
            want, dist = exact(q, op)
            got = [r[0] for r in rows]
            assert got == want, (op, binary, got, want)
            for i, d in rows:
                assert abs(d - float(dist[i])) < 1e-4, (op, i, d, dist[i])


check_knn(conn, binary=False)
check_knn(conn, binary=True)

# Server-side prepared statements, used again and again.
prep = psycopg.connect(dsn, autocommit=True, prepare_threshold=0)
register_vector(prep)
prep.execute("SET hnsw.ef_search = 200")
for _ in range(3):
    check_knn(prep, binary=False)
    check_knn(prep, binary=True)
one = [prep.execute("SELECT embedding FROM items WHERE id = %s", (i,)).fetchone()[0] for i in (3, 4, 3)]
assert all(np.array_equal(v.to_numpy(), data[i]) for v, i in zip(one, (3, 4, 3))), one

# A transaction: committed rows are there, rolled back ones are not.
with prep.transaction():
    prep.execute("INSERT INTO items (id, embedding) VALUES (%s, %s)", (1000, np.ones(8, dtype=np.float32)))
    assert prep.execute("SELECT count(*) FROM items WHERE id = 1000").fetchone() == (1,)
try:
    with prep.transaction():
        prep.execute("INSERT INTO items (id, embedding) VALUES (%s, %s)", (1001, np.ones(8, dtype=np.float32)))
        raise RuntimeError("roll back")
except RuntimeError:
    pass
assert prep.execute("SELECT id FROM items WHERE id IN (1000, 1001) ORDER BY id").fetchall() == [(1000,)]
prep.execute("DELETE FROM items WHERE id = %s", (1000,))

# A wrong dimension is 22000, and the connections go on.
for c in (conn, prep):
    try:
        c.execute("INSERT INTO items (id, embedding) VALUES (%s, %s)", (2000, np.ones(3, dtype=np.float32)))
        raise AssertionError("a 3-dimensional vector went into vector(8)")
    except psycopg.errors.DataException as e:
        assert e.sqlstate == "22000", e.sqlstate
        assert "expected 8 dimensions, not 3" in str(e), str(e)
    assert c.execute("SELECT count(*) FROM items").fetchone() == (300,)
check_knn(prep, binary=True)
print("psycopg through the proxy ok")

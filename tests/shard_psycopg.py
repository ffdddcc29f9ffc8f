"""psycopg 3 with the pgvector package against a running pgvshard shard:
register_vector, then vector/halfvec/bit/sparsevec values in text and
binary, parameters and KNN results. Usage: shard_psycopg.py PORT"""

import sys

import psycopg
from pgvector import HalfVector, SparseVector, Vector
from pgvector.psycopg import register_vector

port = int(sys.argv[1])
conn = psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=db", autocommit=True)
conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
register_vector(conn)
conn.execute(
    "CREATE TABLE py (id bigserial PRIMARY KEY, embedding vector(3), half halfvec(3), "
    "sparse sparsevec(5), bits bit(3))"
)
rows = [
    (Vector([1, 2, 3]), HalfVector([1, 2, 3]), SparseVector({0: 1.0, 4: 2.0}, 5), "101"),
    (Vector([4, 5, 6]), HalfVector([4, 5, 6]), SparseVector({1: 3.0}, 5), "010"),
    (Vector([1, 1, 1]), HalfVector([1, 1, 1]), SparseVector({}, 5), "111"),
]
for binary in (False, True):
    conn.execute("TRUNCATE py")
    with conn.cursor(binary=binary) as cur:
        for e, h, s, b in rows:
            cur.execute(
                "INSERT INTO py (embedding, half, sparse, bits) VALUES (%s, %s, %s, %s::bit(3))",
                (e, h, s, b),
            )
        cur.execute(
            "SELECT embedding, half, sparse, bits, embedding <-> %s AS d FROM py ORDER BY embedding <-> %s LIMIT 2",
            (Vector([1, 2, 3]), Vector([1, 2, 3])),
        )
        got = cur.fetchall()
        assert len(got) == 2, got
        assert got[0][0].to_list() == [1, 2, 3], got
        assert got[0][1].to_list() == [1, 2, 3], got
        assert (got[0][2].indices(), got[0][2].values(), got[0][2].dimensions()) == ([0, 4], [1.0, 2.0], 5), got
        assert got[0][4] == 0.0 and abs(got[1][4] - 5 ** 0.5) < 1e-12, got
        cur.execute("SELECT avg(embedding), count(*) FROM py")
        avg, n = cur.fetchone()
        assert n == 3 and all(abs(a - b) < 1e-5 for a, b in zip(avg.to_list(), [2, 8 / 3, 10 / 3])), (avg, n)
conn.execute("CREATE INDEX ON py USING hnsw (embedding vector_cosine_ops)")
best = conn.execute(
    "SELECT id FROM py ORDER BY embedding <=> %s LIMIT 1", (Vector([4, 5, 6.1]),)
).fetchone()
assert best is not None
print("psycopg ok")

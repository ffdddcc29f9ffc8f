"""psycopg 3's COPY through the proxy (argv[1] = port): write_row in text
and in binary (pgvector's register_vector), read back with COPY TO in both
formats, and an exact KNN computed here. Prints "copy ok"."""

import json
import random
import sys

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

port = int(sys.argv[1])
rng = random.Random(7)
rows = [
    (i, i % 3, np.array([rng.uniform(-5, 5) for _ in range(3)], dtype=np.float32), f"n{i}\t{i}")
    for i in range(1, 1201)
]

with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres", autocommit=True) as conn:
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    register_vector(conn)
    conn.execute("CREATE TABLE pts (id bigint PRIMARY KEY, cat int, v vector(3), note text)")
    with conn.cursor() as cur:
        with cur.copy("COPY pts (id, cat, v, note) FROM STDIN") as copy:
            for r in rows[:600]:
                copy.write_row(r)
        assert cur.rowcount == 600, cur.rowcount
        with cur.copy("COPY pts (id, cat, v, note) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "int4", "vector", "text"])
            for r in rows[600:]:
                copy.write_row(r)
        assert cur.rowcount == 600, cur.rowcount
        assert cur.execute("SELECT count(*) FROM pts").fetchone()[0] == 1200

        for fmt in ["", " (FORMAT BINARY)"]:
            got = {}
            with cur.copy(f"COPY pts (id, cat, v, note) TO STDOUT{fmt}") as copy:
                if fmt:
                    copy.set_types(["int8", "int4", "vector", "text"])
                for row in copy.rows():
                    got[int(row[0])] = row
            assert len(got) == 1200, (fmt, len(got))
            for i, cat, v, note in rows:
                r = got[i]
                assert int(r[1]) == cat and r[3] == note, (fmt, r)
                rv = r[2].to_numpy() if fmt else np.array(json.loads(r[2]), dtype=np.float32)
                assert np.array_equal(rv, v), (fmt, r)

        q = np.array([0.5, -1.0, 2.0], dtype=np.float32)
        want = sorted(rows, key=lambda r: (float(np.sum((r[2].astype(np.float64) - q) ** 2)), r[0]))[:10]
        got = cur.execute("SELECT id FROM pts ORDER BY v <-> %s LIMIT 10", (q,)).fetchall()
        assert [g[0] for g in got] == [w[0] for w in want], (got, [w[0] for w in want])
print("copy ok")

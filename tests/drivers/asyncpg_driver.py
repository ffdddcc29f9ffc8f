"""asyncpg, which prepares with Parse + Describe + Flush and waits: errors
that must come back at once (a bad statement never hangs the
connection), prepared statements, executemany, transactions, KNN with every
distance operator (vectors as text), filter + KNN, pgvector's
register_vector (numpy arrays in, binary; pgvector's Vector out), get,
delete, drop."""

import random

import asyncpg
import numpy as np
import scenario
from pgvector.asyncpg import register_vector

T = "asyncpg_items"


async def errors(conn, steps):
    """Each bad statement fails with PostgreSQL's SQLSTATE, without
    waiting for a Sync, and the connection goes on."""
    await steps.aerror("missing table", conn.fetch("SELECT * FROM asyncpg_nosuchtable"))
    await steps.aerror("syntax", conn.fetch("SELEC 1"))
    await steps.aerror("bad parameter", conn.fetchval("SELECT $1::int", "x"))
    await steps.aerror("division by zero", conn.fetchval("SELECT 1 / (2 - $1::int)", 2))
    await steps.aerror("missing column", conn.prepare(f"SELECT nosuchcolumn FROM {T}"))
    steps.saw("after errors", await conn.fetchval("SELECT 41 + 1"))


async def knn(conn, steps):
    """Vectors as text parameters."""
    rng = random.Random(3)
    rows = []
    for i in range(1, 31):
        v = "[" + ",".join(str(round(rng.uniform(-1, 1), 3)) for _ in range(3)) + "]"
        rows.append((i, i % 3, v))
    await conn.executemany(f"INSERT INTO {T} (id, cat, embedding) VALUES ($1, $2, $3::text::vector)", rows)
    q = "[0.3,-0.2,0.1]"
    for op in ("<->", "<#>", "<=>", "<+>"):
        found = await conn.fetch(
            f"SELECT id, embedding {op} $1::text::vector AS d FROM {T} "
            f"WHERE id < 100 ORDER BY embedding {op} $1::text::vector LIMIT 40",
            q,
        )
        steps.saw(f"knn {op}", scenario.by_distance([tuple(r) for r in found]))
    found = await conn.fetch(
        f"SELECT id, embedding::text FROM {T} WHERE cat = $1 ORDER BY embedding <-> $2::text::vector LIMIT 3",
        1,
        q,
    )
    steps.saw("filter + knn", [tuple(r) for r in found])


async def untyped(conn, steps):
    """Before register_vector: asyncpg looks `vector` up with its
    `WITH RECURSIVE typeinfo_tree` query over pg_type and reads it as
    text; arrays travel in binary both ways (a list as `bigint[]`
    parameter, `int[]`/`text[]`/`vector[]` results)."""
    steps.saw("vector as text", await conn.fetchval(f"SELECT embedding FROM {T} WHERE id = $1", 1))
    rows = await conn.fetch(f"SELECT id, embedding FROM {T} WHERE id = ANY($1::bigint[]) ORDER BY id", [1, 2, 99])
    steps.saw("any array", [tuple(r) for r in rows])
    got = await conn.fetchval("SELECT array_agg(x ORDER BY x DESC) FROM unnest($1::int[]) AS u(x)", [3, 1, 2])
    steps.saw("array_agg", got)
    steps.saw("text array", await conn.fetchval("SELECT $1::text[]", ["a", None, "b c", ""]))
    steps.saw("vector array", await conn.fetchval(f"SELECT ARRAY[embedding, embedding] FROM {T} WHERE id = 1"))
    steps.saw("real array", await conn.fetchval(f"SELECT embedding::real[] FROM {T} WHERE id = 1"))


async def typed(conn, steps):
    """After register_vector, vectors travel in binary: numpy arrays as
    parameters, pgvector's Vector in rows."""
    await register_vector(conn)
    embedding = np.array([0.5, -0.25, 2.0], dtype=np.float32)
    await conn.execute(f"INSERT INTO {T} (id, cat, embedding) VALUES ($1, $2, $3)", 200, 0, embedding)
    got = await conn.fetchval(f"SELECT embedding FROM {T} WHERE id = $1", 200)
    steps.saw("typed get", scenario.plain(got))
    steps.saw("numpy round trip", np.array_equal(got.to_numpy(), embedding))
    found = await conn.fetch(
        f"SELECT id, embedding <-> $1 AS d FROM {T} ORDER BY embedding <-> $1 LIMIT 5", embedding
    )
    steps.saw("knn numpy", scenario.by_distance([tuple(r) for r in found]))


async def run(port, steps):
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database="postgres")
    await conn.execute(f"DROP TABLE IF EXISTS {T}")
    await conn.execute(f"CREATE TABLE {T} (id bigint PRIMARY KEY, cat int, note text, embedding vector(3))")
    await errors(conn, steps)
    stmt = await conn.prepare("SELECT $1::int + $2::int AS s, $3::text AS t")
    steps.saw("prepared", [tuple(r) for r in await stmt.fetch(1, 2, "x")])
    steps.saw("prepared columns", [a.name for a in stmt.get_attributes()])
    steps.saw("prepared again", await stmt.fetchval(40, 2, "y"))
    await conn.execute(f"INSERT INTO {T} (id, cat, note) VALUES (100, 1, 'no vector')")
    await conn.executemany(
        f"INSERT INTO {T} (id, cat, note) VALUES ($1, $2, $3)",
        [(101, 2, "a"), (102, 3, None)],
    )
    rows = await conn.fetch(f"SELECT id, cat, note FROM {T} WHERE id >= $1 ORDER BY id", 100)
    steps.saw("rows", [tuple(r) for r in rows])
    async with conn.transaction():
        await conn.execute(f"UPDATE {T} SET note = $1 WHERE id = $2", "changed", 101)
    try:
        async with conn.transaction():
            await conn.execute(f"DELETE FROM {T} WHERE id = $1", 101)
            await conn.fetch("SELECT * FROM asyncpg_nosuchtable")
    except asyncpg.PostgresError as e:
        steps.saw("rolled back by", e.sqlstate)
    steps.saw("after rollback", await conn.fetchval(f"SELECT note FROM {T} WHERE id = 101"))
    await knn(conn, steps)
    await untyped(conn, steps)
    await typed(conn, steps)
    await conn.execute(f"DELETE FROM {T} WHERE id BETWEEN $1 AND $2", 1, 200)
    steps.saw("empty", await conn.fetchval(f"SELECT count(*) FROM {T}"))
    await conn.execute(f"DROP TABLE {T}")
    await steps.aerror("dropped", conn.fetch(f"SELECT * FROM {T}"))
    await conn.close()


if __name__ == "__main__":
    scenario.main("asyncpg", run)

"""uuid and json columns as LangChain's and LlamaIndex's stores use them,
with the drivers' own types: psycopg 3 sends `uuid.UUID` and `Json` as
text and as binary parameters and reads them back in both formats;
asyncpg sends `uuid.UUID` in binary (also as a `uuid[]`), reads json as
text. The key is a uuid, so the proxy routes each row by it."""

import asyncio
import uuid

import asyncpg
import psycopg
from psycopg.types.json import Json

import scenario

A = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
B = uuid.UUID(int=5)


def run(port, steps):
    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS uj_items")
        c.execute("CREATE TABLE uj_items (id uuid PRIMARY KEY, meta json, note text)")
        c.execute("INSERT INTO uj_items VALUES (%s, %s, %s)", (A, '{"a":  1}', "x"))
        c.execute("INSERT INTO uj_items VALUES (%b, %b, %s)", (B, Json({"b": [1]}), "y"))
        steps.saw("get text", c.execute("SELECT id, meta, note FROM uj_items WHERE id = %s", (A,)).fetchall())
        steps.saw("get binary", c.execute("SELECT id, meta FROM uj_items WHERE id = %b", (B,), binary=True).fetchall())
        steps.saw("ordered binary", c.execute("SELECT id, meta->'b' FROM uj_items ORDER BY id", binary=True).fetchall())
        steps.saw("meta text", c.execute("SELECT meta::text FROM uj_items ORDER BY id DESC").fetchall())
        steps.error("bad uuid", lambda: c.execute("SELECT * FROM uj_items WHERE id = %s", ("nope",)))
        steps.error("duplicate", lambda: c.execute("INSERT INTO uj_items VALUES (%s, NULL, NULL)", (A,)))

    async def with_asyncpg():
        conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database="postgres")
        try:
            one = await conn.fetch("SELECT id, meta FROM uj_items WHERE id = $1", B)
            both = await conn.fetch("SELECT id FROM uj_items WHERE id = ANY($1::uuid[]) ORDER BY id", [B, A])
            await conn.execute("DELETE FROM uj_items WHERE id = $1", A)
            left = await conn.fetchval("SELECT count(*) FROM uj_items")
            return [tuple(r) for r in one], [tuple(r) for r in both], left
        finally:
            await conn.close()

    steps.saw("asyncpg", asyncio.run(with_asyncpg()))
    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as c:
        c.execute("DROP TABLE uj_items")


if __name__ == "__main__":
    scenario.main("uuid_json", run)

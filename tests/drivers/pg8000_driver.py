"""pg8000 (pure Python; extended protocol with typed parameters) with
pgvector's register_vector and the DB-API scenario of dbapi.py."""

import dbapi
import pg8000.dbapi
import scenario
from pgvector.pg8000 import register_vector


class Native:
    """A DB-API connection with the `run` of pg8000's native one, which
    pgvector's register_vector calls (the adapters it registers are the
    connection's own)."""

    def __init__(self, conn):
        self.conn = conn

    def run(self, sql):
        cur = self.conn.cursor()
        cur.execute(sql)
        rows = cur.fetchall()
        self.conn.commit()
        return rows

    def __getattr__(self, name):
        return getattr(self.conn, name)


def run(port, steps):
    def connect():
        return pg8000.dbapi.connect(host="127.0.0.1", port=port, user="postgres", database="postgres")

    dbapi.run(connect, lambda c: register_vector(Native(c)), scenario.sqlstate, steps, "pg8000_items")


if __name__ == "__main__":
    scenario.main("pg8000", run)

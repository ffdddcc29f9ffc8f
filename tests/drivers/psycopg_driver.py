"""psycopg 3 (extended protocol, server-side parameters) with pgvector's
register_vector and the DB-API scenario of dbapi.py."""

import dbapi
import psycopg
import scenario
from pgvector.psycopg import register_vector


def run(port, steps):
    def connect():
        return psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")

    dbapi.run(connect, register_vector, lambda e: e.sqlstate, steps, "psycopg_items")


if __name__ == "__main__":
    scenario.main("psycopg", run)

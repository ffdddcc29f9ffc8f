"""psycopg2 (simple protocol, parameters interpolated client-side) with
pgvector's register_vector and the DB-API scenario of dbapi.py."""

import dbapi
import psycopg2
import scenario
from pgvector.psycopg2 import register_vector


def run(port, steps):
    def connect():
        return psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")

    dbapi.run(connect, register_vector, lambda e: e.pgcode, steps, "psycopg2_items")


if __name__ == "__main__":
    scenario.main("psycopg2", run)

"""psycopg2 (simple protocol, parameters interpolated client-side) with
the DB-API scenario of dbapi.py."""

import dbapi
import psycopg2
import scenario


def run(port, steps):
    def connect():
        return psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")

    dbapi.run(connect, lambda e: e.pgcode, steps, "psycopg2_items")


if __name__ == "__main__":
    scenario.main("psycopg2", run)

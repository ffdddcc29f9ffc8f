"""pg8000 (pure Python; extended protocol with typed parameters) with the
DB-API scenario of dbapi.py."""

import dbapi
import pg8000.dbapi
import scenario


def run(port, steps):
    def connect():
        return pg8000.dbapi.connect(host="127.0.0.1", port=port, user="postgres", database="postgres")

    dbapi.run(connect, scenario.sqlstate, steps, "pg8000_items")


if __name__ == "__main__":
    scenario.main("pg8000", run)

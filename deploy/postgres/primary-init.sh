#!/bin/bash
# docker-compose.yml: run once by the pgvector/pgvector image's entrypoint
# (/docker-entrypoint-initdb.d) when a primary's data directory is created.
# pgvector in the postgres database, replication connections for the
# standby, and the standby named in SYNC_STANDBY as synchronous (in
# postgresql.auto.conf, read from the restart that follows: setting it
# earlier would make this script's own commits wait for a standby that does
# not exist yet). The standby overrides it on its command line, so a
# promoted standby does not wait for a standby of its own.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE EXTENSION IF NOT EXISTS vector;
ALTER SYSTEM SET synchronous_standby_names = '${SYNC_STANDBY}';
SQL
echo "host replication all all scram-sha-256" >>"$PGDATA/pg_hba.conf"

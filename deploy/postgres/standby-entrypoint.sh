#!/bin/bash
# docker-compose.yml: a streaming standby of PRIMARY_HOST. The first start
# clones the primary with pg_basebackup -R (primary_conninfo with
# application_name STANDBY_NAME, the name the primary's
# synchronous_standby_names and the proxy's config use); every start then
# runs postgres in recovery. Extra arguments go to postgres.
set -euo pipefail
mkdir -p "$PGDATA"
chown postgres:postgres "$PGDATA"
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until gosu postgres pg_isready -q -h "$PRIMARY_HOST" -U postgres; do sleep 1; done
  gosu postgres pg_basebackup -h "$PRIMARY_HOST" -U postgres -D "$PGDATA" -R -X stream -c fast \
    -d "application_name=$STANDBY_NAME"
fi
exec gosu postgres postgres -D "$PGDATA" "$@"

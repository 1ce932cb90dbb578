#!/bin/sh
# The instance's PostgreSQL: a cluster made on first start (user and database from
# POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB), reachable from the stack's network only.
set -e
BIN=/usr/lib/postgresql/15/bin
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pw=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pw"
    "$BIN/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pw" --auth-local=trust \
        --auth-host=scram-sha-256 >/dev/null
    rm -f "$pw"
    echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
    "$BIN/pg_ctl" -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/tmp" \
        -w start >/dev/null
    "$BIN/createdb" -h /tmp -U "$POSTGRES_USER" "$POSTGRES_DB"
    "$BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp

#!/usr/bin/env bash
# Start a local PostgreSQL for the test suite and print its URL on stdout.
#
# Idempotent, run as root on Debian: installs the server if it is missing, creates the cluster
# if apt did not (containers often skip it), starts it, waits until it answers, and makes the
# role `mailctl` (password `mailctl`) and the database `mailctl_test`. Safe to run again.
#
#   MAILCTL_TEST_DATABASE_URL=$(.ci/postgres.sh)
set -euo pipefail

PG_ROLE=mailctl
PG_PASSWORD=mailctl
PG_DB=${PG_DB:-mailctl_test}
PG_PORT=5432

log() { echo "postgres.sh: $*" >&2; }

if ! command -v pg_ctlcluster >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    log "installing Debian's postgresql"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

# The newest installed major version (15 on Debian 12).
PG_VERSION=$(ls /usr/lib/postgresql | sort -V | tail -n1)
CLUSTER=main

if ! pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {found=1} END {exit !found}'; then
    log "creating cluster $PG_VERSION/$CLUSTER"
    pg_createcluster --port "$PG_PORT" "$PG_VERSION" "$CLUSTER" >&2
fi

# Tests open many short connections from several processes at once.
conf_dir=/etc/postgresql/$PG_VERSION/$CLUSTER/conf.d
mkdir -p "$conf_dir"
cat >"$conf_dir/mailctl-ci.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
max_connections = 200
EOF

status=$(pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {print $4}')
if [ "$status" != "online" ]; then
    log "starting cluster $PG_VERSION/$CLUSTER"
    # A stale pid file from a killed server (no systemd in a container) blocks the start.
    pidfile=/var/lib/postgresql/$PG_VERSION/$CLUSTER/postmaster.pid
    if [ -f "$pidfile" ] && ! kill -0 "$(head -n1 "$pidfile")" 2>/dev/null; then
        rm -f "$pidfile"
    fi
    pg_ctlcluster "$PG_VERSION" "$CLUSTER" start >&2
fi

for _ in $(seq 1 60); do
    if pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; then
        break
    fi
    sleep 0.5
done
pg_isready -h 127.0.0.1 -p "$PG_PORT" >&2

psql_admin() { runuser -u postgres -- psql -p "$PG_PORT" -X -q -v ON_ERROR_STOP=1 "$@"; }

psql_admin -d postgres <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_ROLE') THEN
        CREATE ROLE $PG_ROLE LOGIN PASSWORD '$PG_PASSWORD';
    ELSE
        ALTER ROLE $PG_ROLE LOGIN PASSWORD '$PG_PASSWORD';
    END IF;
END
\$\$;
SQL

if [ "$(psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != "1" ]; then
    log "creating database $PG_DB"
    psql_admin -d postgres -c "CREATE DATABASE $PG_DB OWNER $PG_ROLE"
fi
# The tests drop and recreate schema public; PostgreSQL 15 gives it to pg_database_owner.
PGOPTIONS="-c client_min_messages=warning" psql_admin -d "$PG_DB" \
    -c "CREATE SCHEMA IF NOT EXISTS public AUTHORIZATION $PG_ROLE" \
    -c "ALTER SCHEMA public OWNER TO $PG_ROLE"

URL="postgresql+psycopg://$PG_ROLE:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"
PGPASSWORD=$PG_PASSWORD psql -X -h 127.0.0.1 -p "$PG_PORT" -U "$PG_ROLE" -d "$PG_DB" -tAc "SELECT 1" >/dev/null
echo "$URL"

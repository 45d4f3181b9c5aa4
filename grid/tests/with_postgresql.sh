#!/usr/bin/env bash
# Run a command with HALOGRID_TEST_PG_URL pointing at a throw-away PostgreSQL cluster: its
# own data directory and Unix socket (no TCP port, no system cluster touched), trust auth,
# removed when the command ends however it ends.
#   grid/tests/with_postgresql.sh .venv/bin/python -m pytest grid/tests
# Needs Debian's postgresql package; run as root (the cluster runs as the postgres user).
set -euo pipefail

bindir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bindir" ]; then
  echo "with_postgresql.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2
  exit 2
fi
cluster=$(mktemp -d /tmp/halogrid-pg.XXXXXX)
chown postgres: "$cluster"
as_postgres() { runuser -u postgres -- "$@"; }
cleanup() {
  as_postgres "$bindir/pg_ctl" -D "$cluster/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$cluster"
}
trap cleanup EXIT

as_postgres "$bindir/initdb" -D "$cluster/data" --auth=trust --username=postgres >/dev/null
as_postgres "$bindir/pg_ctl" -D "$cluster/data" -l "$cluster/server.log" -w \
  -o "-c listen_addresses='' -k $cluster -c fsync=off" start >/dev/null

export HALOGRID_TEST_PG_URL="postgresql+psycopg://postgres@/postgres?host=$cluster"
"$@"

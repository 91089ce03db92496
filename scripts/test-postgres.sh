#!/usr/bin/env bash
# The store's test suite on PostgreSQL: starts a throwaway PostgreSQL (installed on these
# machines, not running) in a temporary folder on a free loopback port, runs the store tests with
# CULTURESPA_TEST_POSTGRES_URL pointing at it (each test makes a database of its own), and stops
# it whatever happens. Extra arguments go to `cargo test`.
#   scripts/test-postgres.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$PG_BIN/initdb" ] || { echo "[test-postgres] no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)" >&2; exit 1; }
DIR=$(mktemp -d /tmp/culturespa-pg.XXXXXX)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# initdb and postgres refuse to run as root: as root, they run as the postgres user.
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
stop() {
  as_owner "$PG_BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap stop EXIT
as_owner "$PG_BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --no-sync >/dev/null
as_owner "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off" start >/dev/null
echo "[test-postgres] PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT" >&2
CULTURESPA_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PORT" cargo test -p culturespa --test store "$@"

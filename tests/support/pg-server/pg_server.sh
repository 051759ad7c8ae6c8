#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests, on 127.0.0.1 only, with trust
# authentication, its socket in its own folder and fsync on (the store's
# durability is what is tested).
#   pg_server.sh start DIR PORT   a fresh cluster in DIR, started on PORT
#   pg_server.sh stop DIR         stops it and removes DIR
# initdb refuses to run as root: as root the server runs as `postgres`.
# The binaries are found with pg_config, else in /usr/lib/postgresql/*/bin.
set -euo pipefail

usage() { echo "usage: pg_server.sh start DIR PORT | stop DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
MODE=$1
DIR=$2

bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
    pg_config --bindir
    return 0
  fi
  echo "pg_server.sh: PostgreSQL's initdb not found (install Debian's postgresql package)" >&2
  exit 1
}
BIN=$(bindir)

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop_server() {
  if [ -f "$DIR/data/postmaster.pid" ]; then
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null || true
  fi
}

case "$MODE" in
  start)
    [ $# -eq 3 ] || usage
    PORT=$3
    # A server left behind by an interrupted run is stopped first.
    stop_server
    rm -rf "$DIR"
    if [ "$(id -u)" -eq 0 ]; then
      install -d -o postgres -g postgres -m 700 "$DIR"
    else
      install -d -m 700 "$DIR"
    fi
    as_owner "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 ||
      { cat "$DIR/initdb.log" >&2; exit 1; }
    # Trust on loopback only: no other host may connect.
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$DIR/data/pg_hba.conf"
    if ! as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=on -c max_connections=200" start >/dev/null; then
      echo "pg_server.sh: the server did not start on 127.0.0.1:$PORT; its log:" >&2
      cat "$DIR/server.log" >&2 || true
      exit 1
    fi
    echo "PostgreSQL on 127.0.0.1:$PORT, data in $DIR/data"
    ;;
  stop)
    stop_server
    rm -rf "$DIR"
    ;;
  *) usage ;;
esac

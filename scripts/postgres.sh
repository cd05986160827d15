#!/usr/bin/env bash
# Private PostgreSQL cluster for the native stack, in .stack/pg (git-ignored).
#   scripts/postgres.sh start   create the cluster on first use, start it, wait until ready
#   scripts/postgres.sh stop    stop it (fast shutdown)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
LOG=$LOGS/postgres.log

ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; }

create() {
  say "creating PostgreSQL cluster in ${PG_DATA#$ROOT/}"
  mkdir -p "$PG_DATA" "$PG_SOCK"
  [ "$(id -u)" = 0 ] && chown -R "$PG_OS_USER" "$STACK/pg"
  chmod 700 "$PG_DATA"
  local pw; pw=$(mktemp); echo "$PG_SUPERPASS" > "$pw"; chmod 644 "$pw"
  as_pg_user "$(pg_bin initdb)" -D "$PG_DATA" -U "$PG_SUPERUSER" --pwfile="$pw" \
    --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$LOG" 2>&1 \
    || { rm -f "$pw"; tail -20 "$LOG"; die "initdb failed"; }
  rm -f "$pw"
  {
    echo; echo "# ---- outbox-saga native stack (infra/postgres/postgresql.conf) ----"
    cat "$ROOT/infra/postgres/postgresql.conf"
    echo "listen_addresses = '$PG_HOST'"
    echo "port = $PG_PORT"
    echo "unix_socket_directories = '$PG_SOCK'"
  } >> "$PG_DATA/postgresql.conf"
  # Debezium connects for replication over TCP.
  echo "host replication debezium 127.0.0.1/32 scram-sha-256" >> "$PG_DATA/pg_hba.conf"
  start_server
  psql_admin postgres -f "$ROOT/infra/postgres/init.sql"
}

start_server() {
  [ "$(id -u)" = 0 ] && chown "$PG_OS_USER" "$LOG" 2>/dev/null || true
  as_pg_user "$(pg_bin pg_ctl)" -D "$PG_DATA" -l "$LOG" -w -t 60 start >/dev/null \
    || { tail -30 "$LOG"; die "PostgreSQL did not start (log: $LOG)"; }
  head -1 "$PG_DATA/postmaster.pid" > "$PIDS/postgres.pid"
  wait_for postgres 30 "$LOG" ready
}

case ${1:-start} in
  start)
    if [ -f "$PG_DATA/PG_VERSION" ]; then
      if ready && alive postgres; then echo "    postgres already running on $PG_HOST:$PG_PORT"; exit 0; fi
      port_in_use "$PG_PORT" && die "port $PG_PORT is in use by another program (set PG_PORT=...)"
      say "starting PostgreSQL on $PG_HOST:$PG_PORT"
      start_server
    else
      port_in_use "$PG_PORT" && die "port $PG_PORT is in use by another program (set PG_PORT=...)"
      create
    fi ;;
  stop)
    if [ -f "$PG_DATA/postmaster.pid" ]; then
      say "stopping PostgreSQL"
      as_pg_user "$(pg_bin pg_ctl)" -D "$PG_DATA" -m fast -w stop >/dev/null || true
    fi
    rm -f "$PIDS/postgres.pid" ;;
  *) die "usage: $0 start|stop" ;;
esac

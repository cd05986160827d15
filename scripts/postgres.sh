#!/usr/bin/env bash
# Private PostgreSQL cluster for the native stack.
#   scripts/postgres.sh start   create the cluster on first use, start it, wait until ready
#   scripts/postgres.sh stop    stop it (fast shutdown)
#   scripts/postgres.sh clean   stop it and delete the cluster (make clean)
# The server's process is the supervisor's (tools/supervisor, through lib.sh's supervise); it
# calls this script to make the cluster (create: initdb and configuration, nothing started) and,
# once the server answers, its databases and roles (init).
# Where it lives (PG_DIR, see scripts/lib.sh): .stack/pg, or, when we are root, a directory
# of the postgres OS user under PG_DIR_BASE (/var/lib/outbox-saga/pg-<hash of the stack's
# path>), because that user may not be able to enter the checkout (root's home is 0700).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

is_root() { [ "$(id -u)" = 0 ]; }
outside_stack() { [ "$PG_DIR" != "$STACK/pg" ]; }

# make_pg_dir: creates PG_DIR (mode 0700, owned by the server's OS user); outside .stack it
# also writes which stack it belongs to, and links .stack/pg and .stack/logs/postgres.log to it.
make_pg_dir() {
  mkdir -p "$STACK" "$LOGS"
  if outside_stack; then
    if [ ! -d "$PG_DIR_BASE" ]; then
      install -d -m 0755 -o root -g root "$PG_DIR_BASE"
    fi
    [ "$(stat -c %u "$PG_DIR_BASE")" = 0 ] \
      || die "$PG_DIR_BASE is not owned by root; it holds the clusters of every stack run as root. Remove it, or choose another directory: PG_DIR_BASE=<dir>"
    mkdir -p "$PG_DIR"
    ln -sfn "$PG_DIR" "$STACK/pg"
    ln -sfn "$PG_LOG" "$LOGS/postgres.log"
  else
    mkdir -p "$PG_DIR"
  fi
  chmod 700 "$PG_DIR"
  if is_root; then chown -h "$PG_OS_USER:" "$PG_DIR"; fi
  as_pg_user test -w "$PG_DIR" \
    || die "the $PG_OS_USER OS user cannot write $PG_DIR (a directory above it is not open to that user); choose another place: PG_DIR_BASE=<dir>"
  if outside_stack; then echo "$STACK" | pg_write "$PG_DIR/stack"; fi
}

# own_log: the server (running as PG_OS_USER) appends to its log file itself, which that user
# makes (never root: see pg_write).
own_log() { as_pg_user touch "$PG_LOG"; }

# create: a new cluster (initdb, our configuration), not started. Until init has run, the cluster
# is not finished: a start that finds the marker makes it again (an interrupted first `make up`
# must not leave a cluster without roles); the supervisor stops what runs of it first.
create() {
  ensure_secrets
  if [ -e "$PG_DIR/creating" ]; then rm -rf "$PG_DATA"; fi
  say "creating PostgreSQL cluster in $PG_DATA"
  make_pg_dir
  as_pg_user touch "$PG_DIR/creating"
  own_log
  local pw=$PG_DIR/superuser-password
  printf '%s\n' "$PG_SUPERPASS" | pg_write "$pw"
  as_pg_user "$(pg_bin initdb)" -D "$PG_DATA" -U "$PG_SUPERUSER" --pwfile="$pw" \
    --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 2>&1 | pg_write "$PG_LOG" \
    || { as_pg_user rm -f "$pw"; tail -20 "$PG_LOG"; die "initdb failed (log: $PG_LOG)"; }
  as_pg_user rm -f "$pw"
  {
    echo; echo "# ---- outbox-saga native stack (infra/postgres/postgresql.conf) ----"
    cat "$ROOT/infra/postgres/postgresql.conf"
    echo "listen_addresses = '$PG_HOST'"
    echo "port = $PG_PORT"
    echo "unix_socket_directories = '$PG_SOCK'"
  } | pg_write "$PG_DATA/postgresql.conf" -a
  # Our own pg_hba.conf (initdb's allows physical replication): passwords over TCP, no replication.
  pg_write "$PG_DATA/pg_hba.conf" <"$ROOT/infra/postgres/pg_hba.conf"
  as_pg_user mkdir -p -m 0700 "$PG_SOCK"
  own_log
}

# init_databases: the service databases and their roles, with this stack's passwords
# (infra/postgres/init.sh; idempotent, so a database added to PG_SERVICES is made at the next
# start). Skipped when nothing it reads changed since it last ran on this cluster.
init_databases() {
  local stamp=$PG_DIR/init.sha256 want r
  # A cluster made before infra/postgres/postgresql.conf logged replication commands gets it now.
  if [ "$(psql_admin postgres -tAc 'show log_replication_commands')" != on ]; then
    psql_admin postgres -qc 'ALTER SYSTEM SET log_replication_commands = on' -c 'SELECT pg_reload_conf()' >/dev/null
  fi
  want=$( { cat "$ROOT/infra/postgres/init.sql" "$ROOT/infra/postgres/init.sh"; echo "$PG_SERVICES"
    for r in $(pg_roles); do echo "$r $(read_secret "pg-$r")"; done; } | sha256sum | cut -d' ' -f1)
  [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || return 0
  PGHOST=$PG_HOST PGPORT=$PG_PORT PGUSER=$PG_SUPERUSER PGPASSWORD=$PG_SUPERPASS PG_SERVICES=$PG_SERVICES \
    "$ROOT/infra/postgres/init.sh" || die "creating the service databases and roles failed (infra/postgres/init.sh)"
  echo "$want" | pg_write "$stamp"
  echo "    databases and roles: ${PG_SERVICES// /, } (infra/postgres/init.sql)"
}
# init: once the server answers: the databases and roles; the cluster is finished.
init() { init_databases; as_pg_user rm -f "$PG_DIR/creating"; }

# clean: stop, then delete the cluster. If .stack/pg points to a cluster made for another path
# (the checkout was moved), that one goes too, unless the stack at that path still uses it
# (the checkout was copied).
clean() {
  local linked owner
  supervise stop postgres
  linked=$(readlink "$STACK/pg" 2>/dev/null || true)
  if [ -n "$linked" ] && [ "$linked" != "$PG_DIR" ] && [ -f "$linked/stack" ]; then
    owner=$(cat "$linked/stack")
    if [ "$(readlink "$owner/pg" 2>/dev/null)" = "$linked" ]; then
      echo "    keeping $linked: it is the cluster of the stack in $owner"
    else
      say "deleting the PostgreSQL cluster in $linked"
      rm -rf "$linked"
    fi
  fi
  if [ -d "$PG_DIR" ]; then
    say "deleting the PostgreSQL cluster in $PG_DIR"
    rm -rf "$PG_DIR"
  fi
  rm -f "$STACK/pg" "$LOGS/postgres.log"
}

case ${1:-start} in
  start | stop) supervise "${1:-start}" postgres ;;
  create | init | clean) "$1" ;;
  *) die "usage: $0 start|stop|clean (create|init: the supervisor's steps)" ;;
esac

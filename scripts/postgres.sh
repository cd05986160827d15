#!/usr/bin/env bash
# Private PostgreSQL cluster for the native stack.
#   scripts/postgres.sh start   create the cluster on first use, start it, wait until ready
#   scripts/postgres.sh stop    stop it (fast shutdown)
#   scripts/postgres.sh clean   stop it and delete the cluster (make clean)
# Where it lives (PG_DIR, see scripts/lib.sh): .stack/pg, or, when we are root, a directory
# of the postgres OS user under PG_DIR_BASE (/var/lib/outbox-saga/pg-<hash of the stack's
# path>), because that user may not be able to enter the checkout (root's home is 0700).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; }
is_root() { [ "$(id -u)" = 0 ]; }
outside_stack() { [ "$PG_DIR" != "$STACK/pg" ]; }

# check_home: PG_DIR is keyed by the stack's path. If .stack/pg points elsewhere, the
# checkout (or its .stack) was moved or copied: its Kafka data belongs to that other cluster.
check_home() {
  local linked
  outside_stack && [ -L "$STACK/pg" ] || return 0
  linked=$(readlink "$STACK/pg")
  [ "$linked" = "$PG_DIR" ] && return 0
  die "this stack's PostgreSQL cluster is $linked (made for $(cat "$linked/stack" 2>/dev/null || echo 'another path')), but a stack at $STACK keeps its cluster in $PG_DIR: the checkout or its .stack was moved or copied. Move it back, or start this one over: make clean && make up"
}

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

create() {
  await_port postgres "$PG_PORT" PG_PORT
  say "creating PostgreSQL cluster in $PG_DATA"
  make_pg_dir
  # Until init.sql has run, the cluster is not finished: a start that finds this marker
  # creates it again (an interrupted first `make up` must not leave a cluster without roles).
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
  start_server
  init_databases
  as_pg_user rm -f "$PG_DIR/creating"
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

# recreate: the cluster's creation was interrupted (see create): nothing in it is worth keeping.
recreate() {
  say "the cluster in $PG_DATA was never completely created (an earlier start stopped during its creation): creating it again"
  stop_component postgres INT 60 QUIT
  await "the processes of the unfinished cluster to exit" "$LEFTOVER_TIMEOUT" pg_cluster_gone \
    || die "processes of the unfinished cluster still run: $(pg_cluster_pids | tr '\n' ' ')"
  rm -rf "$PG_DATA"
  create
}

start_server() {
  local err
  own_log
  # pg_ctl warns "another server might be running" whenever postmaster.pid exists; after
  # await_leftovers that file names a process that is gone, and PostgreSQL replaces it.
  if ! err=$( { as_pg_user "$(pg_bin pg_ctl)" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null; } 2>&1); then
    echo "$err" >&2; tail -30 "$PG_LOG"; die "PostgreSQL did not start (log: $PG_LOG)"
  fi
  grep -v '^pg_ctl: another server might be running' <<<"$err" >&2 || true
  mkdir -p "$PIDS"
  pid_of postgres >"$PIDS/postgres.pid"
  wait_for postgres 30 ready
}

# await_leftovers: what a killed postmaster leaves behind. Its backends live on for a moment
# (each exits when it notices), and postmaster.pid (and the socket's lock file) still name it.
# PostgreSQL refuses to start while a process with that pid exists, even a zombie not yet
# reaped by its parent, or while old backends still use the shared memory. So: wait until no
# process of this cluster runs, then until the killed postmaster's pid has disappeared.
await_leftovers() {
  local lock=$PG_DATA/postmaster.pid pid
  if ! await "the processes of the stopped PostgreSQL to exit" "$LEFTOVER_TIMEOUT" pg_cluster_gone; then
    for pid in $(pg_cluster_pids); do echo "    still running: $(describe_pid "$pid")" >&2; done
    die "PostgreSQL cannot start: processes of its earlier server still run in $PG_DATA (above). They exit within seconds of their postmaster's death unless stuck; stop them (kill <pid>) and run make up again"
  fi
  [ -f "$lock" ] || return 0
  pid=$(head -1 "$lock")
  [ -n "$pid" ] && [ -e "/proc/$pid" ] || return 0 # gone: PostgreSQL replaces the lock itself
  # No process of the cluster exists any more (checked above, the dying included), so the pid
  # is the exited postmaster as a zombie, or the kernel has given it to another process.
  await "pid $pid, the exited postmaster, to be reaped" 10 not_zombie "$pid" || true
  [ -e "/proc/$pid" ] || return 0
  # Still there: a zombie nobody reaps, or another process. Neither holds the lock: it is stale.
  say "removing the stale ${lock#$ROOT/}: it names $(describe_pid "$pid"), which is not a process of this cluster"
  rm -f "$lock" "$PG_SOCK/.s.PGSQL.$PG_PORT.lock"
}
not_zombie() { [ "$(proc_state "$1")" != Z ]; }

start() {
  check_home
  ensure_secrets
  if [ -e "$PG_DIR/creating" ]; then recreate; return; fi
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then create; return; fi
  if already_up postgres ready; then
    mkdir -p "$PIDS"
    pid_of postgres >"$PIDS/postgres.pid"
    echo "    postgres already running on $PG_HOST:$PG_PORT"
  else
    await_leftovers
    await_port postgres "$PG_PORT" PG_PORT
    say "starting PostgreSQL on $PG_HOST:$PG_PORT"
    start_server
  fi
  init_databases
}

# SIGINT is PostgreSQL's fast shutdown; SIGQUIT, if it takes longer than a minute, its immediate one.
stop() { stop_component postgres INT 60 QUIT; }

# clean: stop, then delete the cluster. If .stack/pg points to a cluster made for another path
# (the checkout was moved), that one goes too, unless the stack at that path still uses it
# (the checkout was copied).
clean() {
  local linked owner
  stop
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
  start) start ;;
  stop) stop ;;
  clean) clean ;;
  *) die "usage: $0 start|stop|clean" ;;
esac

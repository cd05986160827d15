#!/usr/bin/env bash
# Shared settings and helpers for the native stack scripts. Sourced, never run.
# Every setting can be overridden from the environment.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK=${STACK_DIR:-$ROOT/.stack}
LIB=$STACK/lib
LOGS=$STACK/logs
PIDS=$STACK/pids

# STACK_PORT_OFFSET moves every port of the stack at once, so that a second stack can
# run beside the first (give it its own STACK_DIR too), e.g. for a benchmark while
# another stack takes chaos:  STACK_DIR=$PWD/.stack-b STACK_PORT_OFFSET=10000 make up
OFFSET=${STACK_PORT_OFFSET:-0}

PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-$((5432 + OFFSET))}
PG_SUPERUSER=${PG_SUPERUSER:-postgres}
PG_SUPERPASS=${PG_SUPERPASS:-postgres}
PG_DATA=$STACK/pg/data
PG_SOCK=$STACK/pg/run
# initdb and pg_ctl refuse to run as root; as root we run them as this OS user.
PG_OS_USER=${PG_OS_USER:-postgres}

KAFKA_HOST=${KAFKA_HOST:-127.0.0.1}
KAFKA_PORT=${KAFKA_PORT:-$((9092 + OFFSET))}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((9093 + OFFSET))}
KAFKA_BOOTSTRAP=$KAFKA_HOST:$KAFKA_PORT
KAFKA_HEAP=${KAFKA_HEAP:--Xms256m -Xmx512m}
TOPIC_PARTITIONS=${TOPIC_PARTITIONS:-3}

CONNECT_PORT=${CONNECT_PORT:-$((8083 + OFFSET))}
CONNECT_URL=http://127.0.0.1:$CONNECT_PORT
CONNECT_HEAP=${CONNECT_HEAP:--Xms256m -Xmx768m}

ORDER_PORT=$((8080 + OFFSET))
INVENTORY_PORT=$((8081 + OFFSET))
PAYMENT_PORT=$((8082 + OFFSET))
GATEWAY_PORT=$((8089 + OFFSET))

# setdefault NAME VALUE: exports NAME=VALUE unless the caller already set NAME.
setdefault() { [ -n "${!1:-}" ] || printf -v "$1" '%s' "$2"; export "${1?}"; }

# What the Go programs and the tests read. Each program's own defaults are the
# offset-0 values; a variable the caller set wins.
for svc in order inventory payment; do
  P=$(echo "$svc" | tr 'a-z' 'A-Z'); port_var=${P}_PORT
  setdefault "${P}_HTTP_ADDR" "127.0.0.1:${!port_var}"
  setdefault "${P}_URL" "http://127.0.0.1:${!port_var}"
  setdefault "${P}_DATABASE_URL" "postgres://${svc}_svc:${svc}_svc@$PG_HOST:$PG_PORT/${svc}_db?sslmode=disable"
  setdefault "${P}_KAFKA_BROKERS" "$KAFKA_BOOTSTRAP"
done
setdefault GATEWAYSIM_ADDR "127.0.0.1:$GATEWAY_PORT"
setdefault PAYMENT_GATEWAY_URL "http://127.0.0.1:$GATEWAY_PORT"
setdefault GATEWAY_URL "$PAYMENT_GATEWAY_URL"
setdefault KAFKA_BROKERS "$KAFKA_BOOTSTRAP"
setdefault PG_ADMIN_URL "postgres://$PG_SUPERUSER:$PG_SUPERPASS@$PG_HOST:$PG_PORT/postgres?sslmode=disable"
export CONNECT_URL PG_HOST PG_PORT STACK_DIR=$STACK

# Topics the saga uses; created explicitly so consumers never wait for a first event.
SAGA_TOPICS="order-events inventory-events payment-events dead-letter-events"

mkdir -p "$LOGS" "$PIDS"

# say prints a progress line.
say() { printf '\033[1m==>\033[0m %s\n' "$*"; }
# die prints an error and exits.
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# alive NAME: true when the process recorded as NAME runs.
alive() {
  local f=$PIDS/$1.pid
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

# wait_for NAME TIMEOUT LOG CMD...: runs CMD until it succeeds, printing a progress
# line; on timeout (or when the process NAME dies) prints the tail of LOG and fails.
wait_for() {
  local name=$1 timeout=$2 log=$3; shift 3
  local start=$SECONDS
  while ! "$@" >/dev/null 2>&1; do
    if [ -f "$PIDS/$name.pid" ] && ! alive "$name"; then
      printf '\n'; echo "---- last lines of $log ----" >&2; tail -n 40 "$log" >&2
      die "$name exited while starting (log: $log)"
    fi
    if (( SECONDS - start >= timeout )); then
      printf '\n'; echo "---- last lines of $log ----" >&2; tail -n 40 "$log" >&2
      die "$name not ready after ${timeout}s (log: $log)"
    fi
    printf '\r    waiting for %s ... %ds' "$name" $((SECONDS - start))
    sleep 1
  done
  printf '\r    %s ready after %ds          \n' "$name" $((SECONDS - start))
}

# as_pg_user CMD...: runs CMD as the Postgres OS user when we are root.
as_pg_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi
}

# pg_bin NAME: path of a PostgreSQL server binary (Debian keeps them out of PATH).
pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/$1" ] && { echo "$d/$1"; return; }
  done
  command -v "$1" || die "PostgreSQL server binary $1 not found (run scripts/install.sh)"
}

# psql_admin DB SQL...: runs SQL as the superuser over the private socket.
psql_admin() {
  local db=$1; shift
  PGPASSWORD=$PG_SUPERPASS psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_SUPERUSER" -d "$db" "$@"
}

# kafka_classpath: the broker/worker classpath resolved by infra/maven/kafka.
kafka_classpath() { echo "$LIB/kafka/*"; }

# kafka_tool CLASS ARGS...: runs a Kafka command-line tool from the resolved jars.
kafka_tool() {
  local cls=$1; shift
  java -Xmx256m -Dlog4j2.configurationFile="$ROOT/infra/kafka/log4j2-tools.properties" \
    -cp "$(kafka_classpath)" "$cls" "$@"
}

# port_in_use PORT: true when something listens on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

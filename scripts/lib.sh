#!/usr/bin/env bash
# Shared settings and helpers for the native stack scripts. Sourced, never run.
# Every setting can be overridden from the environment. Sourcing it only defines things:
# it creates no file and no directory (each script makes what it writes, where it writes it).

# Everything the stack writes (data, logs, secrets, configuration with passwords in it) is its
# user's alone: files 0600, directories 0700.
umask 077

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The stack's directory, absolute and canonical: process identities, pid files and the
# PostgreSQL directory below are keyed by this path.
STACK=$(realpath -m "${STACK_DIR:-$ROOT/.stack}")
LIB=$STACK/lib
LOGS=$STACK/logs
PIDS=$STACK/pids

# STACK_PORT_OFFSET moves every port of the stack at once, so that a second stack can
# run beside the first (give it its own STACK_DIR too), e.g. for a benchmark while
# another stack takes chaos:  STACK_DIR=$PWD/.stack-b STACK_PORT_OFFSET=10000 make up
OFFSET=${STACK_PORT_OFFSET:-0}

# The programs, topics and base ports of the stack: scripts/stack.env, rendered from the table in
# stack/stack.go (a new program is a row there and `go generate ./...` in stack/; see
# docs/service-layout.md, "Adding a service"). Every port below is its base plus OFFSET.
. "$ROOT/scripts/stack.env"

# The Go programs in start order (scripts/services.sh), the monitoring (scripts/prometheus.sh),
# and the saga services: each owns a database, an outbox and a connector, and consumes Kafka.
SERVICES=$STACK_PROGRAMS
MONITORING="alertmanager prometheus"
SAGA_SERVICES=$STACK_SAGA_SERVICES PG_SERVICES=$STACK_SAGA_SERVICES

PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-$((PG_BASE_PORT + OFFSET))}
PG_SUPERUSER=${PG_SUPERUSER:-postgres}
# initdb and the server refuse to run as root; as root they run as this OS user.
PG_OS_USER=${PG_OS_USER:-postgres}

# Where the PostgreSQL cluster lives (PG_DIR: data/, run/ for the socket, the server log).
# The server runs as the OS user PG_OS_USER when we are root, and that user must be able to
# enter every directory above its data directory: a checkout in root's home (mode 0700) is out
# of its reach. So as root the cluster lives in PG_DIR_BASE/<hash of this stack's path>
# (.stack/pg is a symlink to it, `make clean` removes it); otherwise, and for a cluster an
# earlier version of these scripts made in .stack/pg, it lives in .stack/pg.
PG_DIR_BASE=${PG_DIR_BASE:-/var/lib/outbox-saga}
if [ "$(id -u)" != 0 ] || { [ -d "$STACK/pg/data" ] && [ ! -L "$STACK/pg" ]; }; then
  PG_DIR=$STACK/pg
  PG_LOG=$LOGS/postgres.log
else
  PG_DIR=$PG_DIR_BASE/pg-$(printf '%s' "$STACK" | sha256sum | cut -c1-16)
  PG_LOG=$PG_DIR/postgres.log # .stack/logs/postgres.log is a symlink to it
fi
PG_DATA=$PG_DIR/data
PG_SOCK=$PG_DIR/run

KAFKA_HOST=${KAFKA_HOST:-127.0.0.1}
KAFKA_PORT=${KAFKA_PORT:-$((KAFKA_BASE_PORT + OFFSET))}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((KAFKA_CONTROLLER_BASE_PORT + OFFSET))}
KAFKA_BOOTSTRAP=$KAFKA_HOST:$KAFKA_PORT
KAFKA_HEAP=${KAFKA_HEAP:--Xms256m -Xmx512m}
KAFKA_CONF=$STACK/kafka/server.properties
TOPIC_PARTITIONS=${TOPIC_PARTITIONS:-3}

CONNECT_PORT=${CONNECT_PORT:-$((CONNECT_BASE_PORT + OFFSET))}
CONNECT_URL=http://127.0.0.1:$CONNECT_PORT
# The REST API's one user (HTTP Basic; infra/connect/connect-distributed.properties): its password
# is .stack/secrets/connect-rest-<user>, exported as CONNECT_REST_PASSWORD (export_credentials).
CONNECT_REST_USER=${CONNECT_REST_USER:-operator}
CONNECT_HEAP=${CONNECT_HEAP:--Xms256m -Xmx768m}
CONNECT_CONF=$STACK/connect/connect-distributed.properties
# TOPOLOGY (single, or cluster: three Kafka nodes, two Connect workers, two instances of each
# service) and, for the cluster, every broker in KAFKA_BOOTSTRAP: scripts/topology.sh.
. "$ROOT/scripts/topology.sh"

# <PROGRAM>_PORT of every Go program (ORDER_PORT, GATEWAYSIM_PORT, ...).
for svc in $SERVICES; do
  base_var=$(tr 'a-z-' 'A-Z_' <<<"$svc")_BASE_PORT
  printf -v "$(tr 'a-z-' 'A-Z_' <<<"$svc")_PORT" '%s' $((${!base_var} + OFFSET))
done
GATEWAY_PORT=$GATEWAYSIM_PORT
# ---- monitoring (scripts/prometheus.sh; config in infra/prometheus) ----
PROMETHEUS_PORT=${PROMETHEUS_PORT:-$((PROMETHEUS_BASE_PORT + OFFSET))}
# Not 9093 (Alertmanager's own default): Kafka's controller holds it.
ALERTMANAGER_PORT=${ALERTMANAGER_PORT:-$((ALERTMANAGER_BASE_PORT + OFFSET))}
PROMETHEUS_CONF=$STACK/prometheus/prometheus.yml
ALERTMANAGER_CONF=$STACK/alertmanager/alertmanager.yml
# ---- end of monitoring ----

# setdefault NAME VALUE: exports NAME=VALUE unless the caller already set NAME.
setdefault() { [ -n "${!1:-}" ] || printf -v "$1" '%s' "$2"; export "${1?}"; }
# upper WORD: WORD in capitals, - as _ (the prefix of a program's or a principal's variables).
upper() { tr 'a-z-' 'A-Z_' <<<"$1"; }

# What the Go programs and the tests read. Each program's own defaults are the
# offset-0 values; a variable the caller set wins.
for svc in $SAGA_SERVICES; do
  P=$(upper "$svc"); port_var=${P}_PORT
  setdefault "${P}_HTTP_ADDR" "127.0.0.1:${!port_var}"
  setdefault "${P}_URL" "http://127.0.0.1:${!port_var}"
  setdefault "${P}_KAFKA_BROKERS" "$KAFKA_BOOTSTRAP"
done
setdefault GATEWAYSIM_ADDR "127.0.0.1:$GATEWAY_PORT"
setdefault WEBHOOKSINK_ADDR "127.0.0.1:$WEBHOOKSINK_PORT"
setdefault WEBHOOKSINK_URL "http://127.0.0.1:$WEBHOOKSINK_PORT"
setdefault NOTIFICATION_WEBHOOK_URL "$WEBHOOKSINK_URL/hooks"
setdefault PAYMENT_GATEWAY_URL "http://127.0.0.1:$GATEWAY_PORT"
setdefault GATEWAY_URL "$PAYMENT_GATEWAY_URL"
setdefault KAFKA_BROKERS "$KAFKA_BOOTSTRAP"
# The console (services/console) reads the services, Connect and Kafka (as viewer).
setdefault CONSOLE_ADDR "127.0.0.1:$CONSOLE_PORT"
setdefault CONSOLE_URL "http://127.0.0.1:$CONSOLE_PORT"
for svc in $SAGA_SERVICES; do url_var=$(upper "$svc")_URL; setdefault "CONSOLE_$(upper "$svc")_URL" "${!url_var}"; done
setdefault CONSOLE_CONNECT_URL "$CONNECT_URL"
setdefault CONSOLE_KAFKA_BROKERS "$KAFKA_BOOTSTRAP"
setdefault PROMETHEUS_URL "http://127.0.0.1:$PROMETHEUS_PORT"
setdefault ALERTMANAGER_URL "http://127.0.0.1:$ALERTMANAGER_PORT"
export CONNECT_URL CONNECT_REST_USER PG_HOST PG_PORT STACK_DIR=$STACK

# Topics the saga uses (quarantine-events included), Debezium's heartbeat topics (one per connector).
SAGA_TOPICS=$STACK_SAGA_TOPICS
HEARTBEAT_TOPICS=$STACK_HEARTBEAT_TOPICS

# ---- credentials ----------------------------------------------------------------------------
# Every password and the operator token are random, made once per stack by the first make up, kept
# in .stack (0700) in files of mode 0600, never committed, handed to each program through its
# environment (docs/architecture.md, "Credentials"; the list of files: tools/supervisor/secrets.go).
SECRETS=$STACK/secrets
KCAT_CONF=$STACK/kcat.conf
STACK_USER=${STACK_USER:-outbox-saga} # the OS user the stack runs as when root (tools/supervisor/runuser.go)
# read_secret NAME: the secret NAME of this stack (empty when there is none yet).
read_secret() { local v=; [ -r "$SECRETS/$1" ] && read -r v <"$SECRETS/$1"; printf '%s' "$v"; }
# export_credentials: exports what the programs and tests read from the secrets that exist
# (PG_ADMIN_URL, <SVC>_DATABASE_URL, <PRINCIPAL>_KAFKA_PASSWORD, ADMIN_TOKEN, ...; a variable the
# caller set wins): `stack env` prints them (a pipe, no command line).
export_credentials() { [ ! -d "$SECRETS" ] || eval "$(supervise env)"; }
# ensure_secrets: makes what is missing of the stack's secrets and client logins, and exports them.
ensure_secrets() { supervise secrets && export_credentials; }
# The test-only principal injector has a login and ACLs only while make test or make chaos runs
# (scripts/injector.sh on|off; the marker file says so).
injector_on() { [ -e "$STACK/injector-on" ]; }
# kafka_as PRINCIPAL: exports KAFKA_USERNAME and KAFKA_PASSWORD (the tools' and tests' Kafka login).
kafka_as() { export KAFKA_USERNAME=$1; KAFKA_PASSWORD=$(read_secret "kafka-$1"); export KAFKA_PASSWORD; }

# only_env NAME=VALUE... -- COMMAND ARGS...: runs COMMAND (exec: call it in a subshell) with an
# empty environment plus the pairs, exported from within bash: no password on a command line.
only_env() {
  local pairs=() v
  while [ "$1" != -- ]; do pairs+=("$1"); shift; done
  shift
  local cmd; cmd=$(command -v "$1") || die "$1 not found"; shift
  for v in $(compgen -e); do unset "$v" 2>/dev/null || true; done
  for v in "${pairs[@]}"; do export "${v%%=*}=${v#*=}"; done
  exec "$cmd" "$@"
}

# say prints a progress line; die prints an error and exits.
say() { printf '\033[1m==>\033[0m %s\n' "$*"; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# ---- processes ----------------------------------------------------------------------------
# The supervisor is Go (tools/supervisor, tools/cmd/stack): it makes the secrets, the PostgreSQL
# cluster, the broker's logins, ACLs and topics and the connectors, and starts, identifies (pid,
# start time, executable: .stack/pids/<component>.pid), heals and stops every component.
LEFTOVER_TIMEOUT=${LEFTOVER_TIMEOUT:-60} # how long a start waits for what a crashed process left

# supervisor_env: exports the settings the supervisor reads that are not exported above.
supervisor_env() {
  export PG_DATA PG_DIR PG_LOG PG_OS_USER KAFKA_HOST KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_CONF KAFKA_HEAP \
    KCAT_CONF CONNECT_PORT CONNECT_CONF CONNECT_HEAP PROMETHEUS_PORT ALERTMANAGER_PORT PROMETHEUS_CONF \
    ALERTMANAGER_CONF LEFTOVER_TIMEOUT STACK_USER TOPIC_PARTITIONS
}

# supervise COMMAND ARGS...: runs the supervisor (bin/stack, built from tools/cmd/stack when a
# source is newer) with this file's settings: `bin/stack` alone lists its commands.
supervise() {
  if [ ! -x "$ROOT/bin/stack" ] || [ -n "$(find "$ROOT/tools/supervisor" "$ROOT/tools/cmd/stack" "$ROOT/stack" "$ROOT/tools/go.mod" \
    -newer "$ROOT/bin/stack" \( -name '*.go' -o -name go.mod \) -print -quit 2>/dev/null)" ]; then
    (cd "$ROOT/tools" && go build -o "$ROOT/bin/stack" ./cmd/stack) || die "build of tools/cmd/stack failed"
  fi
  supervisor_env
  "$ROOT/bin/stack" -root "$ROOT" "$@"
}
export_credentials

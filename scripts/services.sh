#!/usr/bin/env bash
# Builds and runs the Go programs of the pipeline on the native stack.
#   scripts/services.sh start [name...]   build into bin/ and start (default: all), wait for /readyz
#                                         (SERVICES_NO_BUILD=1: start the binaries in bin/ as they are;
#                                         the chaos tool restarts killed services that way)
#   scripts/services.sh stop  [name...]   stop (SIGTERM, then SIGKILL after 15 s)
#   scripts/services.sh build [name...]   build only
# Each program reads its settings from the environment; scripts/lib.sh exports the ones
# that point it at this stack (ports move with STACK_PORT_OFFSET) and its credentials (its
# database roles, its Kafka login, the operator token: .stack/secrets, made by the first make up).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

port_of() { local v; v=$(addr_var "$1"); [ -n "${!v:-}" ] || die "unknown service $1"; echo "${!v##*:}"; }

# names [NAME...]: the services asked for (default: all), each checked against the list.
names() {
  local list=${*:-$SERVICES} n
  for n in $list; do
    [[ " $SERVICES " == *" $n "* ]] || die "unknown service $n (services: $SERVICES)"
  done
  echo "$list"
}

build() {
  local n
  mkdir -p "$ROOT/bin"
  for n in "$@"; do
    (cd "$ROOT/services/$n" && go build -o "$ROOT/bin/$n" "./cmd/$n") || die "build of $n failed"
  done
}

serving() { curl -fsS -m 2 "http://127.0.0.1:$1/healthz"; }

# program_env NAME: the NAME=VALUE lines of what program NAME is started with: its own settings
# (every <NAME>_* variable) but its database owner's password, the shared settings it reads, and
# nothing else. A service holds its runtime role, its Kafka login, the operator token and, for
# the customer reads, the customer tokens' PUBLIC key; never the superuser's, another service's,
# the owner's (`<name> migrate` gets that, see migrate), Connect's or the injector's secrets.
program_env() {
  local n=$1 P v; P=$(upper "$n")
  echo "STACK_DIR=$STACK"
  for v in $(compgen -e); do
    case $v in
      "${P}_MIGRATIONS_DATABASE_URL" | "${P}_OWNER_PG_PASSWORD" | "${P}_SVC_PG_PASSWORD") ;;
      "${P}"_* | GOGC | GOMEMLIMIT | GOMAXPROCS | GODEBUG | ALLOWED_HOSTS | MAX_CONNECTIONS | OTEL_*) echo "$v=${!v}" ;;
    esac
  done
  if [[ " $SAGA_SERVICES " == *" $n "* ]]; then
    echo "ADMIN_TOKEN=$ADMIN_TOKEN"
    [ -z "${CONNECT_STATUS_TOPIC:-}" ] || echo "CONNECT_STATUS_TOPIC=$CONNECT_STATUS_TOPIC"
  fi
  case $n in
    order | payment | shipping) echo "CUSTOMER_TOKEN_PUBLIC_KEY=$CUSTOMER_TOKEN_PUBLIC_KEY" ;;
    notification) [ -z "${NOTIFY_WEBHOOK_URL:-}" ] || echo "NOTIFY_WEBHOOK_URL=$NOTIFY_WEBHOOK_URL" ;;
  esac
}

# migrate NAME: applies a service's migrations as its database's owner (`bin/NAME migrate`), the
# one process that gets the owner's password.
migrate() {
  local n=$1 P pairs; P=$(upper "$n")
  mapfile -t pairs < <(program_env "$n")
  local v=${P}_MIGRATIONS_DATABASE_URL
  (only_env "${pairs[@]}" "$v=${!v}" -- "$ROOT/bin/$n" migrate) >>"$LOGS/$n.log" 2>&1 \
    || { tail -n 5 "$LOGS/$n.log" >&2; die "the migrations of $n failed (log: $LOGS/$n.log)"; }
}

start_one() {
  local n=$1 port; port=$(port_of "$n")
  if already_up "$n" serving "$port"; then echo "    $n already running on :$port"; return; fi
  await_port "$n" "$port" "$(addr_var "$n")"
  say "starting $n on 127.0.0.1:$port"
  mkdir -p "$LOGS" "$PIDS"
  # The programs run as the stack's OS user (scripts/lib.sh, run_user_ready); the sink keeps
  # what it received in a directory of that user's.
  run_user_ready
  if [ "$n" = webhooksink ]; then owned_by_run_user "$STACK/webhooksink"; fi
  if [[ " $SAGA_SERVICES " == *" $n "* ]]; then migrate "$n"; fi
  local pairs; mapfile -t pairs < <(program_env "$n")
  only_env "${pairs[@]}" -- "$ROOT/bin/$n" </dev/null >>"$LOGS/$n.log" 2>&1 &
  echo $! >"$PIDS/$n.pid"
  # Started = serving HTTP, which a service does once its database is migrated. /readyz may still
  # say 503 (no replication slot before the connectors are registered; Kafka group not joined
  # yet): up.sh waits for it at the end.
  wait_for "$n" 60 serving "$port"
}

cmd=${1:-start}; shift || true
case $cmd in
  build) say "building services"; build $(names "$@") ;;
  start)
    ensure_secrets
    if [ "${SERVICES_NO_BUILD:-}" = 1 ]; then
      for n in $(names "$@"); do [ -x "$ROOT/bin/$n" ] || build "$n"; done
    else
      say "building services"; build $(names "$@")
    fi
    for n in $(names "$@"); do start_one "$n"; done ;;
  stop)
    for n in $(reversed $(names "$@")); do stop_component "$n" TERM 15; done ;;
  *) die "usage: $0 start|stop|build [name...]" ;;
esac

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

start_one() {
  local n=$1 port; port=$(port_of "$n")
  if already_up "$n" serving "$port"; then echo "    $n already running on :$port"; return; fi
  await_port "$n" "$port" "$(addr_var "$n")"
  say "starting $n on 127.0.0.1:$port"
  mkdir -p "$LOGS" "$PIDS"
  nohup "$ROOT/bin/$n" >>"$LOGS/$n.log" 2>&1 &
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

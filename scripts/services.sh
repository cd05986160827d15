#!/usr/bin/env bash
# Builds and runs the Go programs of the pipeline on the native stack.
#   scripts/services.sh start [name...]   build into bin/ and start (default: all), wait for /readyz
#                                         (SERVICES_NO_BUILD=1: start the binaries in bin/ as they are;
#                                         the chaos tool restarts killed services that way)
#   scripts/services.sh stop  [name...]   stop (SIGTERM, then SIGKILL after 15 s)
#   scripts/services.sh build             build only
# Each program reads its settings from the environment; scripts/lib.sh exports the ones
# that point it at this stack (ports move with STACK_PORT_OFFSET).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# name:port, in start order (the gateway simulator before the payment service).
ALL="gatewaysim:$GATEWAY_PORT order:$ORDER_PORT inventory:$INVENTORY_PORT payment:$PAYMENT_PORT"

port_of() { local s; for s in $ALL; do if [ "${s%%:*}" = "$1" ]; then echo "${s##*:}"; return; fi; done; die "unknown service $1"; }
names() { if [ $# -gt 0 ]; then echo "$@"; else local s; for s in $ALL; do echo "${s%%:*}"; done; fi; }

build() {
  local n
  mkdir -p "$ROOT/bin"
  for n in $(names "$@"); do
    (cd "$ROOT/services/$n" && go build -o "$ROOT/bin/$n" "./cmd/$n") || die "build of $n failed"
  done
}

start_one() {
  local n=$1 port; port=$(port_of "$n")
  if alive "$n"; then echo "    $n already running on :$port"; return; fi
  port_in_use "$port" && die "port $port is in use by another program (stop it, or override the service's *_HTTP_ADDR)"
  nohup "$ROOT/bin/$n" >>"$LOGS/$n.log" 2>&1 &
  echo $! > "$PIDS/$n.pid"
  # Started = serving HTTP, which a service does once its database is migrated. /readyz may still
  # say 503 (no replication slot before `make connectors`; Kafka group not joined yet): up.sh
  # waits for it at the end.
  wait_for "$n" 60 "$LOGS/$n.log" curl -fsS "http://127.0.0.1:$port/healthz"
}

stop_one() {
  local n=$1 pid
  alive "$n" || { rm -f "$PIDS/$n.pid"; return; }
  pid=$(cat "$PIDS/$n.pid"); kill "$pid"
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$PIDS/$n.pid"
}

cmd=${1:-start}; shift || true
case $cmd in
  build) say "building services"; build "$@" ;;
  start)
    if [ "${SERVICES_NO_BUILD:-}" = 1 ]; then
      for n in $(names "$@"); do [ -x "$ROOT/bin/$n" ] || build "$n"; done
    else
      say "building services"; build "$@"
    fi
    for n in $(names "$@"); do say "starting $n on 127.0.0.1:$(port_of "$n")"; start_one "$n"; done ;;
  stop)
    for n in $(names "$@"); do alive "$n" && say "stopping $n"; stop_one "$n"; done ;;
  *) die "usage: $0 start|stop|build [name...]" ;;
esac

#!/usr/bin/env bash
# Builds and runs the Go programs of the pipeline on the native stack.
#   scripts/services.sh start [name...]   build into bin/ and start (default: all), wait for /healthz
#                                         (SERVICES_NO_BUILD=1: start the binaries in bin/ as they are;
#                                         the chaos tool restarts killed services that way)
#   scripts/services.sh stop  [name...]   stop (SIGTERM, then SIGKILL after 15 s)
#   scripts/services.sh build [name...]   build only
# The processes are the supervisor's (tools/supervisor, through lib.sh's supervise): it starts each
# program with exactly the environment it needs (its own settings, its credentials; see
# programEnv there), after its migrations (`bin/<name> migrate`, as its database's owner). It calls
# `prepare` first: the build, and the webhook sink's directory.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# names [NAME...]: the programs asked for (default: all), each checked against the list.
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

# prepare NAME...: builds them (SERVICES_NO_BUILD=1: the missing ones only); the sink keeps what
# it received in a directory of the stack's OS user's (scripts/lib.sh, run_user_ready).
prepare() {
  local n
  if [ "${SERVICES_NO_BUILD:-}" = 1 ]; then
    for n in "$@"; do [ -x "$ROOT/bin/$n" ] || build "$n"; done
  else
    say "building services"; build "$@"
  fi
  mkdir -p "$LOGS" "$PIDS"
  run_user_ready
  if [[ " $* " == *" webhooksink "* ]]; then owned_by_run_user "$STACK/webhooksink"; fi
}

cmd=${1:-start}; shift || true
case $cmd in
  build) say "building services"; build $(names "$@") ;;
  prepare) prepare $(names "$@") ;;
  start | stop) supervise "$cmd" $(names "$@") ;;
  *) die "usage: $0 start|stop|build [name...]" ;;
esac

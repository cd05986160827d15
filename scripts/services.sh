#!/usr/bin/env bash
# The Go programs of the pipeline on the native stack (the supervisor starts each with exactly the
# environment it needs, after its migrations; tools/supervisor).
#   scripts/services.sh start [name...]   build into bin/ and start (default: all), wait until they answer
#                                         (SERVICES_NO_BUILD=1: start the binaries in bin/ as they are)
#   scripts/services.sh stop  [name...]   stop (SIGTERM, then SIGKILL after 15 s)
#   scripts/services.sh build [name...]   build only
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cmd=${1:-start}; shift || true
names=${*:-$SERVICES}
for n in $names; do [[ " $SERVICES " == *" $n "* ]] || die "unknown service $n (services: $SERVICES)"; done
case $cmd in
  build) say "building services"; for n in $names; do (cd "$ROOT/services/$n" && go build -o "$ROOT/bin/$n" "./cmd/$n") || die "build of $n failed"; done ;;
  start | stop) supervise "$cmd" $names ;;
  *) die "usage: $0 start|stop|build [name...]" ;;
esac

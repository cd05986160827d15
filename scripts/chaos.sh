#!/usr/bin/env bash
# `make chaos`: the chaos run against the main native stack (tools/cmd/chaos).
#   CYCLES=100 make chaos          kill cycles (default 20); report in docs/chaos/
#   BUDGET=30m make chaos          stop cycling after 30 minutes (the report says how many ran)
#   TOPOLOGY=cluster make chaos    on the cluster: kills brokers (the active controller among them),
#                                  the busiest Connect worker, service instances, PostgreSQL, a broker
#                                  and a worker at once; report in docs/chaos/REPORT-cluster.md
#   scripts/chaos.sh --short       the short variant of `make test` (3 cycles, ~2 minutes);
#                                  its report goes to .stack/logs/chaos-short/ (kept when make test deletes the stack)
# It brings the stack up first (scripts/up.sh reuses what runs).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
mkdir -p "$LOGS"

"$ROOT/scripts/up.sh" >"$LOGS/chaos-up.log" 2>&1 || { cat "$LOGS/chaos-up.log"; die "the stack did not come up"; }
# The stack's credentials (made by up.sh on a fresh checkout); the chaos tool writes poison and
# duplicates and resets the services' groups as the test-only Kafka principal injector.
ensure_secrets
if ! injector_on; then # make test turned it on already, and turns it off at its end
  "$ROOT/scripts/injector.sh" on
  trap '"$ROOT/scripts/injector.sh" off' EXIT
fi
kafka_as injector
(cd "$ROOT/tools" && go build -o "$ROOT/bin/chaos" ./cmd/chaos) || die "build of tools/cmd/chaos failed"

if [ "${1:-}" = --short ]; then
  say "chaos, short variant (3 cycles, one replay, a little poison and fuzz, the webhook down 8 s)"
  "$ROOT/bin/chaos" -root "$ROOT" -short -cycles "${CYCLES:-3}" -rate 10 -wal-outage 8s -webhook-outage 8s -fuzz 300 \
    -report "$LOGS/chaos-short"
  exit
fi
say "chaos ($TOPOLOGY): ${CYCLES:-20} cycles (log: ${LOGS#$ROOT/}/chaos.log)"
# The cluster's three brokers, two workers and twelve instances share the two cores: 10 orders a
# second instead of 15.
rate=15
[ "$TOPOLOGY" != cluster ] || rate=10
"$ROOT/bin/chaos" -root "$ROOT" -cycles "${CYCLES:-20}" -budget "${BUDGET:-0}" -rate "${RATE:-$rate}" -report "$ROOT/docs/chaos" 2>&1 | tee "$LOGS/chaos.log"

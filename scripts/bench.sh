#!/usr/bin/env bash
# Benchmarks the saga pipeline of the native stack (tools/cmd/bench) and writes docs/bench/
# (docs/bench/README.md says what it measures and how). Brings the stack up first when the order
# service does not answer. Settings (env or flags):
#   BENCH_RATES=25,50,100,200,300,400  BENCH_STEP_DURATION=20s  BENCH_DURATION=60s (the issue's target: 10m)
#   BENCH_CEILING_DURATION=10s (per level)  BENCH_CEILING_WORKERS=1,2,4,8,16,32  BENCH_SUSTAIN_RATE=0 (auto)
#   BENCH_P99=250ms  BENCH_IDLE=30s (the cost model's idle baseline; 0: none)  BENCH_COST_TAIL=6s
#   BENCH_PROFILE=1 (pprof + JFR under load → PROFILES.md)  BENCH_PROFILE_DURATION=30s  BENCH_PROFILE_RATE=0 (auto)
#   BENCH_PRELOAD=1000000 (instead of the usual run: 50 orders/s fresh vs. with 1M sagas' rows → PRELOAD.md)
#   BENCH_CONSOLE=100000 (instead of the usual run: the console's pages timed with 100k sagas' rows → CONSOLE.md)
#   BENCH_OUT=docs/bench (where the reports go: a scratch directory for a run on a busy machine)
# Extra arguments go to the command: scripts/bench.sh -duration 10m -profile
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if ! curl -fsS "$ORDER_URL/readyz" >/dev/null 2>&1; then
  say "the order service does not answer at $ORDER_URL; bringing the stack up"
  "$ROOT/scripts/up.sh"
fi
ensure_secrets # the stack's credentials; bench reads Kafka as the read-only principal viewer
export ROOT CONSOLE_URL CONNECT_URL CONNECT_REST_USER CONNECT_REST_PASSWORD PG_ADMIN_URL KAFKA_BROKERS ORDER_URL INVENTORY_URL STACK_DIR TOPIC_PARTITIONS
cd "$ROOT"
exec go run ./tools/cmd/bench "$@"

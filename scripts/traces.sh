#!/usr/bin/env bash
# `make traces`: the trace viewer. Zipkin's server (its exec jar from Maven Central, in memory)
# on 127.0.0.1:$ZIPKIN_PORT, and the Go programs restarted so that they export their spans to it
# (OTEL_TRACES_EXPORTER=zipkin: messaging/tracing). It runs in the foreground; Ctrl-C stops
# Zipkin and restarts the programs without tracing. OTLP to a collector of your own instead:
# OTEL_EXPORTER_OTLP_ENDPOINT=http://host:4318 make up.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ZIPKIN_PORT=${ZIPKIN_PORT:-$((ZIPKIN_BASE_PORT + OFFSET))}
dir=$LIB/zipkin
if ! ls "$dir"/zipkin-server-*-exec.jar >/dev/null 2>&1; then
  say "resolving Zipkin's server from Maven Central into ${dir#$ROOT/} (about 135 MB, once)"
  mvn -q -B -f "$ROOT/infra/maven/zipkin/pom.xml" dependency:copy-dependencies -DoutputDirectory="$dir" || die "Maven could not resolve infra/maven/zipkin/pom.xml"
fi
jar=$(ls "$dir"/zipkin-server-*-exec.jar | head -1)
! ss -Hltn "sport = :$ZIPKIN_PORT" | grep -q . || die "port $ZIPKIN_PORT is taken (ZIPKIN_PORT moves it)"

say "starting Zipkin on http://127.0.0.1:$ZIPKIN_PORT (log: ${LOGS#$ROOT/}/zipkin.log)"
mkdir -p "$LOGS"
java -Xms64m -Xmx384m -jar "$jar" --armeria.ports[0].port="$ZIPKIN_PORT" --armeria.ports[0].ip=127.0.0.1 \
  >"$LOGS/zipkin.log" 2>&1 &
zipkin=$!
restart_programs() { supervise stop $STACK_PROGRAMS && supervise start $STACK_PROGRAMS; }
finish() {
  trap - EXIT INT TERM
  kill "$zipkin" 2>/dev/null || true
  say "restarting the programs without tracing"
  unset OTEL_TRACES_EXPORTER OTEL_EXPORTER_ZIPKIN_ENDPOINT
  restart_programs
}
trap finish EXIT INT TERM
for _ in $(seq 120); do curl -fsS -m 1 "http://127.0.0.1:$ZIPKIN_PORT/health" >/dev/null 2>&1 && break; sleep 1; done
curl -fsS -m 1 "http://127.0.0.1:$ZIPKIN_PORT/health" >/dev/null || die "Zipkin did not answer (log: ${LOGS#$ROOT/}/zipkin.log)"
export OTEL_TRACES_EXPORTER=zipkin OTEL_EXPORTER_ZIPKIN_ENDPOINT=http://127.0.0.1:$ZIPKIN_PORT/api/v2/spans
say "restarting the programs exporting their spans to Zipkin"
restart_programs
cat <<MSG

Traces: http://127.0.0.1:$ZIPKIN_PORT/zipkin/ — place an order (README), then search by its traceId
(GET /orders/{id} answers it) or open http://127.0.0.1:$ZIPKIN_PORT/zipkin/traces/<traceId>.
One order is one trace: the POST, each outbox insert, each consumed record, the gateway and webhook
calls, across the five services. Ctrl-C stops the viewer and restarts the programs without tracing.
MSG
wait "$zipkin"

#!/usr/bin/env bash
# Kafka Connect (distributed mode) with the Debezium Postgres connector plugin.
#   scripts/connect.sh start   start the worker, wait until its REST API lists the Debezium plugin
#   scripts/connect.sh stop    stop the worker recorded in .stack/pids/connect.pid (SIGTERM, SIGKILL after 30 s)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
LOG=$LOGS/connect.log
DIR=$STACK/connect
CONF=$CONNECT_CONF

ready() {
  curl -fsS -m 5 "$CONNECT_URL/connector-plugins" | grep -q 'io.debezium.connector.postgresql.PostgresConnector'
}

start() {
  ensure_secrets
  if already_up connect ready; then echo "    kafka connect already running on $CONNECT_URL"; return; fi
  await_port connect "$CONNECT_PORT" CONNECT_PORT
  mkdir -p "$DIR" "$LOGS" "$PIDS"
  chmod 700 "$DIR"
  {
    cat "$ROOT/infra/connect/connect-distributed.properties"
    echo "bootstrap.servers=$KAFKA_BOOTSTRAP"
    echo "listeners=http://127.0.0.1:$CONNECT_PORT"
    echo "rest.advertised.host.name=127.0.0.1"
    echo "plugin.path=$LIB/plugins"
  } >"$CONF"
  say "starting Kafka Connect on $CONNECT_URL"
  # The worker's config and the connector JSON read these through the env config provider: the
  # database's address, each connector's database password (DEBEZIUM_<SVC>_PG_PASSWORD) and the
  # worker's Kafka password (CONNECT_KAFKA_PASSWORD), exported by scripts/lib.sh.
  export PG_HOST PG_PORT
  # shellcheck disable=SC2086
  nohup java $CONNECT_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/infra/kafka/log4j2.properties" \
    -cp "$(kafka_classpath)" org.apache.kafka.connect.cli.ConnectDistributed "$CONF" >>"$LOG" 2>&1 &
  echo $! >"$PIDS/connect.pid"
  wait_for connect 120 ready
}

case ${1:-start} in
  start) start ;;
  stop) stop_component connect TERM 30 ;;
  *) die "usage: $0 start|stop" ;;
esac

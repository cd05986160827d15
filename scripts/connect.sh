#!/usr/bin/env bash
# Kafka Connect (distributed mode) with the Debezium Postgres connector plugin.
#   scripts/connect.sh start   start the worker, wait until its REST API lists the Debezium plugin
#   scripts/connect.sh stop    stop the worker recorded in .stack/pids/connect.pid
set -euo pipefail
. "$(dirname "$0")/lib.sh"
LOG=$LOGS/connect.log
DIR=$STACK/connect
CONF=$DIR/connect-distributed.properties

ready() {
  curl -fsS "$CONNECT_URL/connector-plugins" | grep -q 'io.debezium.connector.postgresql.PostgresConnector'
}

case ${1:-start} in
  start)
    if alive connect; then echo "    kafka connect already running on $CONNECT_URL"; exit 0; fi
    port_in_use "$CONNECT_PORT" && die "port $CONNECT_PORT is in use by another program (set CONNECT_PORT=...)"
    mkdir -p "$DIR"
    {
      cat "$ROOT/infra/connect/connect-distributed.properties"
      echo "bootstrap.servers=$KAFKA_BOOTSTRAP"
      echo "listeners=http://127.0.0.1:$CONNECT_PORT"
      echo "rest.advertised.host.name=127.0.0.1"
      echo "plugin.path=$LIB/plugins"
    } > "$CONF"
    say "starting Kafka Connect on $CONNECT_URL"
    # The connector JSON reads these through the worker's env config provider.
    export PG_HOST PG_PORT DEBEZIUM_PG_PASSWORD=${DEBEZIUM_PG_PASSWORD:-debezium}
    # shellcheck disable=SC2086
    nohup java $CONNECT_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$ROOT/infra/kafka/log4j2.properties" \
      -cp "$(kafka_classpath)" org.apache.kafka.connect.cli.ConnectDistributed "$CONF" >>"$LOG" 2>&1 &
    echo $! > "$PIDS/connect.pid"
    wait_for connect 120 "$LOG" ready ;;
  stop)
    if alive connect; then
      say "stopping Kafka Connect"
      pid=$(cat "$PIDS/connect.pid"); kill "$pid"
      for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDS/connect.pid" ;;
  *) die "usage: $0 start|stop" ;;
esac

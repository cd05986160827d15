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
  connect_curl -fsS -m 5 "$CONNECT_URL/connector-plugins" | grep -q 'io.debezium.connector.postgresql.PostgresConnector'
}
# open_to_anyone: true when the REST API answers a request without credentials (a worker started
# by a version of this script without the basic auth extension).
open_to_anyone() { curl -fsS -m 5 -o /dev/null "$CONNECT_URL/connectors" 2>/dev/null; }

start() {
  ensure_secrets
  if already_up connect ready; then
    if ! open_to_anyone; then echo "    kafka connect already running on $CONNECT_URL"; return; fi
    say "Kafka Connect on $CONNECT_URL takes requests without credentials (an earlier version started it): restarting it"
    stop_component connect TERM 30
  fi
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
  # The REST API's users (HTTP Basic, rest.extension.classes in the properties above): the login
  # module reads user=password lines from this file; the JAAS file names it.
  echo "$CONNECT_REST_USER=$(read_secret "connect-rest-$CONNECT_REST_USER")" | write_secret "$DIR/rest-users.properties"
  write_secret "$DIR/rest-jaas.conf" <<JAAS
KafkaConnect {
  org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule required
  file="$DIR/rest-users.properties";
};
JAAS
  say "starting Kafka Connect on $CONNECT_URL"
  # The worker's config and the connector JSON read these through the env config provider: the
  # database's address, each connector's database password (DEBEZIUM_<SVC>_PG_PASSWORD) and the
  # worker's Kafka password (CONNECT_KAFKA_PASSWORD), exported by scripts/lib.sh. Not the REST
  # API's own password: the worker reads it from rest-users.properties, and in its environment
  # the env config provider would hand it to any connector config.
  export PG_HOST PG_PORT
  # shellcheck disable=SC2086
  nohup env -u CONNECT_REST_PASSWORD java $CONNECT_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Djava.security.auth.login.config="$DIR/rest-jaas.conf" \
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

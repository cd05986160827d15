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
    # The worker's own login (principal connect), in this 0600 file and in no environment.
    local jaas="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"connect\" password=\"$(read_secret kafka-connect)\";"
    for prefix in "" producer. consumer. admin.; do echo "${prefix}sasl.jaas.config=$jaas"; done
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
  # The worker runs as the stack's OS user (scripts/lib.sh, run_user_ready): it reads these files.
  run_user_ready
  enterable_by_run_user "$DIR"
  readable_by_run_user "$CONF" "$DIR/rest-users.properties" "$DIR/rest-jaas.conf"
  say "starting Kafka Connect on $CONNECT_URL"
  # The worker starts with an empty environment plus what the connector JSON reads through the
  # env config provider (whose allowlist takes only these names): the database's address, each
  # connector's database password (DEBEZIUM_<SVC>_PG_PASSWORD) and Kafka password
  # (CONNECT_<SVC>_KAFKA_PASSWORD). Not the superuser's, the services', the REST API's (the worker
  # reads that from rest-users.properties) or its own Kafka password (in $CONF).
  local envs=() svc P v
  for svc in $SAGA_SERVICES; do
    P=$(upper "$svc")
    for v in "DEBEZIUM_${P}_PG_PASSWORD" "CONNECT_${P}_KAFKA_PASSWORD"; do envs+=("$v=${!v}"); done
  done
  # shellcheck disable=SC2086
  only_env PG_HOST="$PG_HOST" PG_PORT="$PG_PORT" "${envs[@]}" LANG=C.UTF-8 -- \
    java $CONNECT_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Djava.security.auth.login.config="$DIR/rest-jaas.conf" \
    -Dlog4j2.configurationFile="$ROOT/infra/kafka/log4j2.properties" \
    -cp "$(kafka_classpath)" org.apache.kafka.connect.cli.ConnectDistributed "$CONF" </dev/null >>"$LOG" 2>&1 &
  echo $! >"$PIDS/connect.pid"
  wait_for connect 120 ready
}

case ${1:-start} in
  start) start ;;
  stop) stop_component connect TERM 30 ;;
  *) die "usage: $0 start|stop" ;;
esac

#!/usr/bin/env bash
# Kafka Connect (distributed mode) with the Debezium Postgres connector plugin.
#   scripts/connect.sh start   start the worker, wait until its REST API lists the Debezium plugin
#   scripts/connect.sh stop    stop the worker (SIGTERM, SIGKILL after 30 s)
# The worker's process is the supervisor's (tools/supervisor, through lib.sh's supervise), which
# starts it with an empty environment plus what the connector JSON reads through the env config
# provider; it calls this script to write the worker's configuration (configure).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
DIR=$STACK/connect
CONF=$CONNECT_CONF

configure() {
  ensure_secrets
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
}

case ${1:-start} in
  start | stop) supervise "${1:-start}" connect ;;
  configure) configure ;;
  *) die "usage: $0 start|stop (configure: the supervisor's step)" ;;
esac

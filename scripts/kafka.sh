#!/usr/bin/env bash
# Apache Kafka (KRaft, single node) for the native stack, data in .stack/kafka.
#   scripts/kafka.sh start   format storage on first use, start the broker, create the saga topics
#   scripts/kafka.sh stop    stop the broker recorded in .stack/pids/kafka.pid (SIGTERM, SIGKILL after 30 s)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
LOG=$LOGS/kafka.log
DIR=$STACK/kafka
CONF=$KAFKA_CONF

ready() { kcat -b "$KAFKA_BOOTSTRAP" -L -m 2; }

configure() {
  mkdir -p "$DIR/data" "$LOGS" "$PIDS"
  {
    cat "$ROOT/infra/kafka/server.properties"
    echo "log.dirs=$DIR/data"
    echo "listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT"
    echo "advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT"
    echo "controller.quorum.bootstrap.servers=$KAFKA_HOST:$KAFKA_CONTROLLER_PORT"
  } > "$CONF"
  if [ ! -f "$DIR/data/meta.properties" ]; then
    say "formatting Kafka storage in ${DIR#$ROOT/}/data"
    kafka_tool kafka.tools.StorageTool format --config "$CONF" --standalone \
      --cluster-id "$(kafka_tool kafka.tools.StorageTool random-uuid)" >/dev/null
  fi
}

# LogAppendTime: a record's timestamp is the broker's append time, so the outbox commit → Kafka
# hop (envelope occurredAt → record timestamp) can be measured (make bench).
# Only the missing ones: each TopicCommand is a JVM start (seconds on a small box), and a restart
# after a crash should not pay for that.
create_topics() {
  local t have
  have=$(kcat -b "$KAFKA_BOOTSTRAP" -L -J -m 5 | jq -r '.topics[].topic')
  for t in $SAGA_TOPICS; do
    grep -qx "$t" <<<"$have" && continue
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BOOTSTRAP" \
      --create --if-not-exists --topic "$t" --partitions "$TOPIC_PARTITIONS" --replication-factor 1 \
      --config message.timestamp.type=LogAppendTime --config max.message.bytes=1048576 >/dev/null
  done
  echo "    topics: $SAGA_TOPICS ($TOPIC_PARTITIONS partitions each)"
}

start() {
  if already_up kafka ready; then echo "    kafka already running on $KAFKA_BOOTSTRAP"; return; fi
  # After a crash: the broker's lock on its log directory (released when its process has
  # exited) and its two ports.
  await_lock kafka "$DIR/data/.lock"
  await_port kafka "$KAFKA_PORT" KAFKA_PORT
  await_port kafka "$KAFKA_CONTROLLER_PORT" KAFKA_CONTROLLER_PORT
  configure
  say "starting Kafka on $KAFKA_BOOTSTRAP"
  # shellcheck disable=SC2086
  nohup java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/infra/kafka/log4j2.properties" \
    -cp "$(kafka_classpath)" kafka.Kafka "$CONF" >>"$LOG" 2>&1 &
  echo $! >"$PIDS/kafka.pid"
  wait_for kafka 90 ready
  create_topics
}

case ${1:-start} in
  start) start ;;
  stop) stop_component kafka TERM 30 ;;
  *) die "usage: $0 start|stop" ;;
esac

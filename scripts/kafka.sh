#!/usr/bin/env bash
# Apache Kafka (KRaft, single node) for the native stack, data in .stack/kafka.
#   scripts/kafka.sh start   format storage on first use (with the admin's login), start the broker,
#                            then make its logins, ACLs and saga topics what the repository says
#   scripts/kafka.sh stop    stop the broker (SIGTERM, SIGKILL after 30 s)
# The broker's process is the supervisor's (tools/supervisor, through lib.sh's supervise); it calls
# this script to write the broker's configuration (configure) and, once the broker answers, to
# apply its logins, ACLs and topics (setup; setup-if-changed on a broker that ran already).
# Every client logs in (SASL/SCRAM-SHA-512) and may do only what infra/kafka/acls.conf allows; the
# passwords are the stack's (.stack/secrets, see scripts/lib.sh).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
DIR=$STACK/kafka
CONF=$KAFKA_CONF

configure() {
  local pw
  mkdir -p "$DIR/data" "$LOGS" "$PIDS"
  chmod 700 "$DIR" "$DIR/data"
  pw=$(read_secret kafka-admin)
  # The file holds the admin's password: 0600, like everything the stack writes (umask 077).
  {
    cat "$ROOT/infra/kafka/server.properties"
    echo "log.dirs=$DIR/data"
    echo "listeners=BROKER://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT"
    echo "advertised.listeners=BROKER://$KAFKA_HOST:$KAFKA_PORT"
    echo "controller.quorum.bootstrap.servers=$KAFKA_HOST:$KAFKA_CONTROLLER_PORT"
    echo "listener.name.broker.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$pw\";"
    echo "listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"$pw\" user_admin=\"$pw\";"
    # kcat's logins (see infra/kafka/server.properties): the same principals and passwords as
    # their SCRAM logins, so the same ACLs.
    echo "listener.name.broker.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_viewer=\"$(read_secret kafka-viewer)\" user_injector=\"$(read_secret kafka-injector)\";"
  } >"$CONF"
  chmod 600 "$CONF"
  if [ ! -f "$DIR/data/meta.properties" ]; then
    say "formatting Kafka storage in ${DIR#$ROOT/}/data (with the admin's SCRAM login)"
    format "$pw"
  fi
  # The broker runs as the stack's OS user (scripts/lib.sh, run_user_ready): it reads its
  # configuration and owns its data.
  run_user_ready
  enterable_by_run_user "$DIR"
  readable_by_run_user "$CONF"
  owned_by_run_user "$DIR/data"
}

# format PASSWORD: formats the storage with the admin's SCRAM-SHA-512 login, the one login the
# broker needs before any client can log in. The arguments, password included, go through a java
# @argfile (0600, deleted after), so that no command line shows the password.
format() {
  local args=$DIR/format.args rc=0
  printf '%s\n' kafka.tools.StorageTool format --config "$CONF" --standalone \
    --cluster-id "$(kafka_tool kafka.tools.StorageTool random-uuid)" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=$1]" | write_secret "$args"
  java -Xmx256m -Dlog4j2.configurationFile="$ROOT/infra/kafka/log4j2-tools.properties" \
    -cp "$(kafka_classpath)" @"$args" >/dev/null || rc=$?
  rm -f "$args"
  [ "$rc" = 0 ] || die "formatting the Kafka storage failed"
}

# setup: the broker's logins (a SCRAM login per principal of the ACL file), its ACLs (exactly the
# file's) and the saga topics (LogAppendTime, so that make bench can measure the outbox commit →
# Kafka hop; the missing ones only), by tools/cmd/kafkasetup as the admin. Idempotent: it runs at
# every start of the broker, also after a crash; on a broker that was running already only when
# something it applies changed since (setup_if_changed).
setup() {
  (cd "$ROOT/tools" && go build -o "$ROOT/bin/kafkasetup" ./cmd/kafkasetup) || die "build of tools/cmd/kafkasetup failed"
  KAFKA_USERNAME=admin KAFKA_PASSWORD=$(read_secret kafka-admin) "$ROOT/bin/kafkasetup" \
    -brokers "$KAFKA_BOOTSTRAP" -acls "$(acl_files)" $(injector_on || echo -drop-logins injector) \
    -topics "$(echo $SAGA_TOPICS | tr ' ' ',')" -transient-topics "$(echo $HEARTBEAT_TOPICS | tr ' ' ',')" -partitions "$TOPIC_PARTITIONS" \
    || die "setting up the broker's logins, ACLs and topics failed (if this stack's Kafka storage was made by an earlier version, start over: make clean && make up)"
  setup_stamp >"$DIR/setup.sha256"
}
setup_stamp() {
  local p
  { cat "$ROOT/infra/kafka/acls.conf" "$ROOT/infra/kafka/acls-test.conf" "$ROOT"/tools/cmd/kafkasetup/*.go
    injector_on && echo injector on "$ROOT"/tools/kafkaacl/*.go
    echo "$SAGA_TOPICS $HEARTBEAT_TOPICS $TOPIC_PARTITIONS"
    for p in $(kafka_principals); do echo "$p $(read_secret "kafka-$p")"; done; } | sha256sum | cut -d' ' -f1
}
setup_if_changed() { [ "$(cat "$DIR/setup.sha256" 2>/dev/null)" = "$(setup_stamp)" ] || setup; }

case ${1:-start} in
  start | stop) supervise "${1:-start}" kafka ;;
  configure | setup) ensure_secrets; "$1" ;;
  setup-if-changed) ensure_secrets; setup_if_changed ;;
  *) die "usage: $0 start|stop (configure|setup|setup-if-changed: the supervisor's steps)" ;;
esac

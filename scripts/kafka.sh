#!/usr/bin/env bash
# Apache Kafka (KRaft, single node) for the native stack, data in .stack/kafka.
#   scripts/kafka.sh start   format storage on first use (with the admin's login), start the broker,
#                            then make its logins, ACLs and saga topics what the repository says
#   scripts/kafka.sh stop    stop the broker (SIGTERM, SIGKILL after 30 s)
# The supervisor (tools/supervisor, through lib.sh's supervise) writes the broker's configuration,
# formats its storage on first use and runs it; once the broker answers it calls this script to
# apply its logins, ACLs and topics (setup; setup-if-changed on a broker that ran already).
# Every client logs in (SASL/SCRAM-SHA-512) and may do only what infra/kafka/acls.conf allows; the
# passwords are the stack's (.stack/secrets, see scripts/lib.sh).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
DIR=$STACK/kafka

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
  setup) ensure_secrets; setup ;;
  setup-if-changed) ensure_secrets; setup_if_changed ;;
  *) die "usage: $0 start|stop (setup|setup-if-changed: the supervisor's steps)" ;;
esac

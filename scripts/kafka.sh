#!/usr/bin/env bash
# Apache Kafka (KRaft) for the native stack, data in .stack/kafka; the supervisor runs it.
#   scripts/kafka.sh start|stop              start (or heal) or stop the broker
#   scripts/kafka.sh setup|setup-if-changed  its logins, ACLs and topics (tools/supervisor/kafkasetup.go)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
case ${1:-start} in
  start | stop) supervise "${1:-start}" kafka ;;
  setup) supervise kafka-setup ;;
  setup-if-changed) supervise kafka-setup -if-changed ;;
  *) die "usage: $0 start|stop|setup|setup-if-changed" ;;
esac

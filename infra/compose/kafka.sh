#!/usr/bin/env bash
# A Kafka node of docker compose (apache/kafka image): the native stack's broker configuration
# (infra/kafka/server.properties) with the compose network's listeners and the logins from the
# environment (.env, see scripts/compose-env.sh). Formats the storage on first start with the
# admin's SCRAM login, then runs the broker. The users, ACLs and topics come from the
# kafka-setup container (tools/cmd/kafkasetup), as on the native stack. The PLAIN logins are the
# viewer's only: the test-only injector (infra/kafka/acls-test.conf) does not exist in this stack,
# which no test runs on.
#
# Two topologies, one script:
# - docker-compose.yml: one node (no NODE_ID), a standalone controller quorum, host port 9092.
# - docker-compose.cluster.yml: NODE_ID 1–3, each with its EXTERNAL_PORT (the host's), the
#   cluster's overrides (infra/kafka/cluster.properties: RF 3, min.insync.replicas 2), the static
#   quorum of the three nodes (kafka, kafka-2, kafka-3, controllers on 9093) and the one CLUSTER_ID
#   every node is formatted with. Broker and controller in one process, as natively.
set -euo pipefail
umask 077
: "${ADMIN_KAFKA_PASSWORD:?}" "${VIEWER_KAFKA_PASSWORD:?}"
if [ -n "${NODE_ID:-}" ]; then
  : "${EXTERNAL_PORT:?}" "${CLUSTER_ID:?}"
fi
port=${EXTERNAL_PORT:-9092}
self=kafka; [ "${NODE_ID:-1}" = 1 ] || self=kafka-$NODE_ID
conf=/tmp/server.properties
data=/var/lib/kafka/data
pw=$ADMIN_KAFKA_PASSWORD
scram='org.apache.kafka.common.security.scram.ScramLoginModule required'
plain='org.apache.kafka.common.security.plain.PlainLoginModule required'
{
  cat /etc/outbox-saga/kafka/server.properties
  if [ -n "${NODE_ID:-}" ]; then
    cat /etc/outbox-saga/kafka/cluster.properties
    echo "node.id=$NODE_ID"
    echo "controller.quorum.voters=1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"
  else
    echo "controller.quorum.bootstrap.servers=localhost:9093"
  fi
  echo "log.dirs=$data"
  # BROKER: the containers (<node>:19092); EXTERNAL: the host (127.0.0.1:<port>, published).
  echo "listeners=BROKER://:19092,EXTERNAL://:$port,CONTROLLER://:9093"
  echo "advertised.listeners=BROKER://$self:19092,EXTERNAL://127.0.0.1:$port"
  echo "listener.security.protocol.map=BROKER:SASL_PLAINTEXT,EXTERNAL:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
  echo "listener.name.external.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN"
  for l in broker external; do
    echo "listener.name.$l.scram-sha-512.sasl.jaas.config=$scram username=\"admin\" password=\"$pw\";"
    echo "listener.name.$l.plain.sasl.jaas.config=$plain user_viewer=\"$VIEWER_KAFKA_PASSWORD\";"
  done
  echo "listener.name.controller.plain.sasl.jaas.config=$plain username=\"admin\" password=\"$pw\" user_admin=\"$pw\";"
} >"$conf"
{
  echo "security.protocol=SASL_PLAINTEXT"
  echo "sasl.mechanism=SCRAM-SHA-512"
  echo "sasl.jaas.config=$scram username=\"admin\" password=\"$pw\";"
} >/tmp/admin.properties # the healthcheck's login

if [ ! -f "$data/meta.properties" ]; then
  # Through a java @argfile: no command line shows the password. One node formats a standalone
  # quorum; a cluster's nodes share CLUSTER_ID and find their quorum in controller.quorum.voters.
  if [ -n "${NODE_ID:-}" ]; then
    set -- --cluster-id "$CLUSTER_ID"
  else
    set -- --standalone --cluster-id "$(/opt/kafka/bin/kafka-storage.sh random-uuid)"
  fi
  printf '%s\n' kafka.tools.StorageTool format --config "$conf" "$@" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=$pw]" >/tmp/format.args
  /opt/kafka/bin/kafka-run-class.sh @/tmp/format.args
  rm -f /tmp/format.args
fi
# As on the native stack, the broker holds its secrets in $conf (0600) and in no environment.
unset ADMIN_KAFKA_PASSWORD VIEWER_KAFKA_PASSWORD pw
exec /opt/kafka/bin/kafka-server-start.sh "$conf"

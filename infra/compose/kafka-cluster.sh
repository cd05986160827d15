#!/usr/bin/env bash
# A node of the cluster topology in docker compose (docker-compose.cluster.yml over
# docker-compose.yml): infra/compose/kafka.sh's broker with the cluster's overrides
# (infra/kafka/cluster.properties: RF 3, min.insync.replicas 2), its NODE_ID, its EXTERNAL_PORT (the
# host's), the static quorum of the three nodes (kafka, kafka-2, kafka-3, controllers on 9093) and
# the one CLUSTER_ID every node is formatted with. Broker and controller in one process, as natively.
set -euo pipefail
umask 077
: "${ADMIN_KAFKA_PASSWORD:?}" "${VIEWER_KAFKA_PASSWORD:?}" "${NODE_ID:?}" "${EXTERNAL_PORT:?}" "${CLUSTER_ID:?}"
conf=/tmp/server.properties
data=/var/lib/kafka/data
pw=$ADMIN_KAFKA_PASSWORD
scram='org.apache.kafka.common.security.scram.ScramLoginModule required'
plain='org.apache.kafka.common.security.plain.PlainLoginModule required'
self=kafka; [ "$NODE_ID" = 1 ] || self=kafka-$NODE_ID
{
  cat /etc/outbox-saga/kafka/server.properties /etc/outbox-saga/kafka/cluster.properties
  echo "node.id=$NODE_ID"
  echo "log.dirs=$data"
  echo "listeners=BROKER://:19092,EXTERNAL://:$EXTERNAL_PORT,CONTROLLER://:9093"
  echo "advertised.listeners=BROKER://$self:19092,EXTERNAL://127.0.0.1:$EXTERNAL_PORT"
  echo "listener.security.protocol.map=BROKER:SASL_PLAINTEXT,EXTERNAL:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
  echo "controller.quorum.voters=1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"
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
  # Through a java @argfile: no command line shows the password. No --standalone: the quorum is
  # controller.quorum.voters.
  printf '%s\n' kafka.tools.StorageTool format --config "$conf" --cluster-id "$CLUSTER_ID" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=$pw]" >/tmp/format.args
  /opt/kafka/bin/kafka-run-class.sh @/tmp/format.args
  rm -f /tmp/format.args
fi
unset ADMIN_KAFKA_PASSWORD VIEWER_KAFKA_PASSWORD pw
exec /opt/kafka/bin/kafka-server-start.sh "$conf"

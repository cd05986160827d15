#!/usr/bin/env bash
# The broker of docker-compose.yml (apache/kafka image): the native stack's broker configuration
# (infra/kafka/server.properties) with the compose network's listeners and the logins from the
# environment (.env, see scripts/compose-env.sh). Formats the storage on first start with the
# admin's SCRAM login, then runs the broker. The users, ACLs and topics come from the
# kafka-setup container (tools/cmd/kafkasetup), as on the native stack. The PLAIN logins are the
# viewer's only: the test-only injector (infra/kafka/acls-test.conf) does not exist in this stack,
# which no test runs on.
set -euo pipefail
umask 077
: "${ADMIN_KAFKA_PASSWORD:?}" "${VIEWER_KAFKA_PASSWORD:?}"
conf=/tmp/server.properties
data=/var/lib/kafka/data
pw=$ADMIN_KAFKA_PASSWORD
scram='org.apache.kafka.common.security.scram.ScramLoginModule required'
plain='org.apache.kafka.common.security.plain.PlainLoginModule required'
{
  cat /etc/outbox-saga/kafka/server.properties
  echo "log.dirs=$data"
  # BROKER: the containers (kafka:19092); EXTERNAL: the host (127.0.0.1:9092, published).
  echo "listeners=BROKER://:19092,EXTERNAL://:9092,CONTROLLER://:9093"
  echo "advertised.listeners=BROKER://kafka:19092,EXTERNAL://127.0.0.1:9092"
  echo "listener.security.protocol.map=BROKER:SASL_PLAINTEXT,EXTERNAL:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
  echo "controller.quorum.bootstrap.servers=localhost:9093"
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
  # Through a java @argfile: no command line shows the password.
  printf '%s\n' kafka.tools.StorageTool format --config "$conf" --standalone \
    --cluster-id "$(/opt/kafka/bin/kafka-storage.sh random-uuid)" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=$pw]" >/tmp/format.args
  /opt/kafka/bin/kafka-run-class.sh @/tmp/format.args
  rm -f /tmp/format.args
fi
# As on the native stack, the broker holds its secrets in $conf (0600) and in no environment.
unset ADMIN_KAFKA_PASSWORD VIEWER_KAFKA_PASSWORD pw
exec /opt/kafka/bin/kafka-server-start.sh "$conf"

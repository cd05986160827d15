#!/usr/bin/env bash
# The Connect worker of docker-compose.yml (quay.io/debezium/connect image): HTTP Basic on its REST
# API, as on the native stack (infra/connect/connect-distributed.properties, scripts/connect.sh).
# The extension is Kafka's own (libs/connect-basic-auth-extension-*.jar of the Kafka release in the
# image); rest.extension.classes comes from CONNECT_REST_EXTENSION_CLASSES. Writes the login
# module's user file and the JAAS file from REST_OPERATOR_PASSWORD (.env's CONNECT_REST_PASSWORD),
# removes that variable from the worker's environment (the env config provider would hand it to
# any connector config), then runs the image's own entrypoint.
set -euo pipefail
umask 077
: "${REST_OPERATOR_PASSWORD:?}"
ls "$KAFKA_HOME"/libs/connect-basic-auth-extension-*.jar >/dev/null \
  || { echo "no connect-basic-auth-extension jar in $KAFKA_HOME/libs: the REST API would be open" >&2; exit 1; }
dir=/tmp/rest-auth
mkdir -p "$dir"
printf 'operator=%s\n' "$REST_OPERATOR_PASSWORD" >"$dir/rest-users.properties"
cat >"$dir/rest-jaas.conf" <<JAAS
KafkaConnect {
  org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule required
  file="$dir/rest-users.properties";
};
JAAS
unset REST_OPERATOR_PASSWORD
export KAFKA_OPTS="${KAFKA_OPTS:-} -Djava.security.auth.login.config=$dir/rest-jaas.conf"
exec /docker-entrypoint.sh start

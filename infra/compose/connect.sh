#!/usr/bin/env bash
# The Connect worker of docker-compose.yml (quay.io/debezium/connect image), set up as the native
# stack's (infra/connect/connect-distributed.properties, scripts/connect.sh):
#
# - HTTP Basic on its REST API. The extension is Kafka's own (libs/connect-basic-auth-extension-*.jar
#   of the Kafka release in the image); rest.extension.classes comes from
#   CONNECT_REST_EXTENSION_CLASSES. Writes the login module's user file and the JAAS file from
#   REST_OPERATOR_PASSWORD (.env's CONNECT_REST_PASSWORD).
# - The worker's own Kafka login (principal connect) goes into the worker's properties file, as
#   scripts/connect.sh does, from WORKER_KAFKA_PASSWORD (.env's CONNECT_KAFKA_PASSWORD): the
#   worker's clients and the consumer and admin clients it makes for the connectors log in with it;
#   each connector's producer logs in as the connector's own principal (connectors/*.json:
#   producer.override.sasl.jaas.config). Chosen over renaming: the password then is in no
#   environment of the worker at all, so no connector config can name it, whatever the env config
#   provider's allowlist says. (Not CONNECT_*: the image turns those into worker properties and
#   prints them.)
# - The security settings of the native worker, taken from that same file (mounted read-only):
#   connector.client.config.override.policy (Principal: a connector may override only its clients'
#   login) and the env config provider with its allowlist (PG_HOST, PG_PORT,
#   DEBEZIUM_<SVC>_PG_PASSWORD, CONNECT_<SVC>_KAFKA_PASSWORD: what connectors/*.json read).
#
# Both passwords are removed from the environment before the image's own entrypoint runs (the env
# config provider reads the worker's environment). What stays is what the connector JSON reads: the
# database's address, each connector's database password and each connector's Kafka password. The
# image's entrypoint turns every CONNECT_* variable into a worker property and prints it unless
# SENSITIVE_PROPERTIES names it: the connectors' Kafka passwords (CONNECT_<SVC>_KAFKA_PASSWORD) are
# CONNECT_* by the connector JSON's choice, so SENSITIVE_PROPERTIES names every CONNECT_* variable
# that holds a password or a JAAS line.
set -euo pipefail
umask 077
: "${REST_OPERATOR_PASSWORD:?}" "${WORKER_KAFKA_PASSWORD:?}"
native=/etc/outbox-saga/connect/connect-distributed.properties
ls "$KAFKA_HOME"/libs/connect-basic-auth-extension-*.jar >/dev/null \
  || { echo "no connect-basic-auth-extension jar in $KAFKA_HOME/libs: the REST API would be open" >&2; exit 1; }

# The REST API's one user.
dir=/tmp/rest-auth
mkdir -p "$dir"
printf 'operator=%s\n' "$REST_OPERATOR_PASSWORD" >"$dir/rest-users.properties"
cat >"$dir/rest-jaas.conf" <<JAAS
KafkaConnect {
  org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule required
  file="$dir/rest-users.properties";
};
JAAS

# The worker's properties: the image's own file (the entrypoint copies config.orig/ into config/
# unless a file is there already; this does the same for this one file first), without what an
# earlier start of this container appended, then the native settings and the worker's login.
props=$KAFKA_HOME/config/connect-distributed.properties
if [ ! -e "$props" ]; then
  cp "$KAFKA_HOME/config.orig/connect-distributed.properties" "$props" \
    || { echo "no connect-distributed.properties in $KAFKA_HOME/config.orig: the image has changed" >&2; exit 1; }
fi
keys='((producer|consumer|admin)\.)?sasl\.jaas\.config|connector\.client\.config\.override\.policy|config\.providers(\.[^=]*)?|topic\.creation\.enable'
sed -i -E "/^($keys)=/d" "$props"
grep -qE '^connector\.client\.config\.override\.policy=Principal$' "$native" \
  && grep -qE '^config\.providers\.env\.param\.allowlist\.pattern=' "$native" \
  || { echo "$native has no Principal override policy or no env provider allowlist" >&2; exit 1; }
{
  grep -E "^(connector\.client\.config\.override\.policy|config\.providers(\.[^=]*)?|topic\.creation\.enable)=" "$native"
  jaas="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"connect\" password=\"$WORKER_KAFKA_PASSWORD\";"
  for prefix in "" producer. consumer. admin.; do echo "${prefix}sasl.jaas.config=$jaas"; done
} >>"$props"
chmod 600 "$props"

unset REST_OPERATOR_PASSWORD WORKER_KAFKA_PASSWORD jaas
SENSITIVE_PROPERTIES=$(compgen -e | grep -E '^CONNECT_.*(PASSWORD|JAAS_CONFIG)$' | paste -sd, || true)
export SENSITIVE_PROPERTIES
export KAFKA_OPTS="${KAFKA_OPTS:-} -Djava.security.auth.login.config=$dir/rest-jaas.conf"
exec /docker-entrypoint.sh start

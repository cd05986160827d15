#!/usr/bin/env bash
# Brings the whole pipeline up on this machine, without Docker:
# PostgreSQL → Kafka (KRaft) → Kafka Connect + Debezium → the Go services → the connectors →
# Alertmanager and Prometheus.
# Installs what is missing first. Running it again while up is harmless.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start=$SECONDS
"$ROOT/scripts/install.sh"
# The stack's passwords and operator token (.stack/secrets, .stack/admin-token): made once, here.
ensure_secrets
# The supervisor (tools/cmd/stack): PostgreSQL, Kafka, Kafka Connect, the Go programs (they migrate
# their databases, which the connectors need, before any order is accepted: a new slot streams
# only what is written after it), the connectors, Alertmanager and Prometheus; then /readyz.
supervise up

cat <<MSG

The pipeline is up ($(( SECONDS - start ))s). What runs where:
  PostgreSQL      $PG_HOST:$PG_PORT   $(for s in $PG_SERVICES; do printf '%s_db ' "$s"; done)  (log ${LOGS#$ROOT/}/postgres.log)
  Kafka (KRaft)   $KAFKA_BOOTSTRAP    topics: $SAGA_TOPICS
  Kafka Connect   $CONNECT_URL   connectors: $(cd "$ROOT/connectors" && ls *.json | sed 's/\.json$//' | tr '\n' ' ')
  order           $ORDER_URL      inventory  $INVENTORY_URL      payment  $PAYMENT_URL
  shipping        $SHIPPING_URL      notification  $NOTIFICATION_URL
  gateway simulator  $GATEWAY_URL      webhook sink  $WEBHOOKSINK_URL
  console         $CONSOLE_URL   (the operator's: sagas, one saga live, dead letters, pipeline health;
                  log in with the operator token, .stack/admin-token)
  Prometheus      $PROMETHEUS_URL   (alerts: $PROMETHEUS_URL/alerts; rules in infra/prometheus/rules)
  Alertmanager    $ALERTMANAGER_URL   (alerts reach the webhook sink as "kind":"alert")
  Traces          make traces: Zipkin on http://127.0.0.1:$((ZIPKIN_BASE_PORT + OFFSET))/zipkin/, one order = one trace

Credentials (random, this stack's only, mode 0600), each sent from a file, never on a command line:
the operator's header in ${STACK#$ROOT/}/admin.header (token: admin-token), kcat's login (read-only) in
${KCAT_CONF#$ROOT/}, Kafka Connect's REST login in ${STACK#$ROOT/}/connect.curlrc (curl -K), every other secret in
${SECRETS#$ROOT/}/. A customer's token: make -s token CUSTOMER=U1.

Try it (README.md has the whole walk-through):
  curl -s -X PUT $ORDER_URL/prices/A100 -H @${STACK#$ROOT/}/admin.header \\
       -H 'Content-Type: application/json' -d '{"unitPrice":15000,"currency":"KRW"}'
  curl -s -X PUT $INVENTORY_URL/stock/A100 -H @${STACK#$ROOT/}/admin.header \\
       -H 'Content-Type: application/json' -d '{"available":100}'
  make -s token CUSTOMER=U1 | sed 's/^/Authorization: Bearer /' > ${STACK#$ROOT/}/u1.header
  curl -s -X POST $ORDER_URL/orders -H @${STACK#$ROOT/}/u1.header -H 'Content-Type: application/json' \\
       -d '{"currency":"KRW","paymentToken":"tok_ok","items":[{"sku":"A100","qty":1}]}'
  curl -s -H @${STACK#$ROOT/}/u1.header $ORDER_URL/orders/<orderId>          # PENDING → COMPLETED
  kcat -F ${KCAT_CONF#$ROOT/} -C -t order-events -f '%k %h %s\n'
  curl -s -K ${STACK#$ROOT/}/connect.curlrc "$CONNECT_URL/connectors?expand=status"
  make tail TOPIC=order-events                    # the same, formatted
  make status                                     # processes, connectors, slot lag, consumer lag
  make down                                       # stop everything started here
MSG

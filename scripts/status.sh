#!/usr/bin/env bash
# One screen: each process (pid, RSS), each connector and task state, each replication
# slot's lag in bytes (a slot that no connector of connectors/*.json owns is red), each consumer
# group's lag (read as the read-only Kafka principal viewer), the alerts pending or firing in Prometheus.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

echo "PROCESSES"
supervise status

red() { printf '\033[1;31m%s\033[0m\n' "$*"; }

echo; echo "SERVICES (/readyz: ready, degraded = up but its CDC path is not streaming, unavailable)"
for n in $SAGA_SERVICES; do
  url_var=$(tr a-z A-Z <<<"$n")_URL; url=${!url_var}
  if ! ready=$(curl -sS -m 3 "$url/readyz" 2>/dev/null) || [ -z "$ready" ]; then
    red "  $(printf '%-13s' "$n") not answering on $url"
    continue
  fi
  line="  $(printf '%-13s' "$n") $(jq -r .status <<<"$ready")"
  problems=$(jq -r '[(.failed // {}), (.degraded // {})] | add | to_entries[] | "\(.key): \(.value)"' <<<"$ready")
  if [ -z "$problems" ]; then echo "$line"; else red "$line"; sed 's/^/      /' <<<"$problems" | while read -r p; do red "      $p"; done; fi
done

echo; echo "CONNECTORS ($CONNECT_URL)"
if names=$(connect_curl -fsS "$CONNECT_URL/connectors" 2>/dev/null); then
  for c in $(echo "$names" | jq -r '.[]' | sort); do
    st=$(connect_curl -fsS "$CONNECT_URL/connectors/$c/status")
    line=$(jq -r '"  \(.name)  connector=\(.connector.state)  tasks=\([.tasks[]? | "\(.id):\(.state)"] | join(","))"' <<<"$st")
    if jq -e '.connector.state == "RUNNING" and ([.tasks[]?.state] | length > 0 and all(. == "RUNNING"))' <<<"$st" >/dev/null; then
      echo "$line"
    else
      red "$line"
      jq -r '.connector.trace // empty, (.tasks[]?.trace // empty)' <<<"$st" | grep -E '^[A-Za-z].*(Exception|Error)|^Caused by' | head -3 \
        | while read -r l; do red "      $l"; done
    fi
  done
  [ -n "$(echo "$names" | jq -r '.[]')" ] || echo "  none registered (run: make connectors)"
else
  echo "  Kafka Connect not reachable"
fi

echo; echo "REPLICATION SLOTS (lag = current WAL − confirmed flush; retained = current WAL − restart)"
# The slots the connectors own; any other slot is a copy of a database's changes that nobody
# watches (e.g. a test_decoding slot made with a connector's role): red, with its plugin.
owned=" $(for f in "$ROOT"/connectors/*.json; do jq -r '.config["slot.name"]' "$f"; done | tr '\n' ' ')"
if pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then
  printf '  %-20s %-16s %-7s %-10s %-10s %s\n' SLOT DATABASE ACTIVE LAG RETAINED WAL_STATUS
  psql_admin postgres -tA -F ' ' -c "
    select slot_name, coalesce(database, '-'), active,
           replace(coalesce(pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)), '-'), ' ', ''),
           replace(coalesce(pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)), '-'), ' ', ''),
           coalesce(wal_status, '-'), slot_type, coalesce(plugin, '-')
      from pg_replication_slots order by slot_name" |
  while read -r slot db active lag retained wal type plugin; do
    line=$(printf '  %-20s %-16s %-7s %-10s %-10s %s' "$slot" "$db" "$active" "$lag" "$retained" "$wal")
    if [[ $owned != *" $slot "* ]]; then
      red "$line   not a connector's ($type slot, plugin $plugin): drop it unless you know whose it is"
    elif [ "$active" = t ] && [ "$wal" != lost ] && [ "$wal" != unreserved ]; then echo "$line"; else red "$line"; fi
  done
else
  echo "  PostgreSQL not reachable"
fi

echo; echo "CONSUMER GROUPS"
if kcat -F "$KCAT_CONF" -L -m 2 >/dev/null 2>&1; then
  kafka_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server "$KAFKA_BOOTSTRAP" \
    --command-config "$SECRETS/kafka-viewer.properties" --describe --all-groups 2>/dev/null | awk 'NF && $1 != "Consumer" {printf "  %-20s %-18s %-4s %-8s %-8s %s\n", $1, $2, $3, $4, $5, $6}' \
    | awk '!seen[$0]++'
else
  echo "  Kafka not reachable"
fi

echo; echo "ALERTS (Prometheus $PROMETHEUS_URL/alerts, Alertmanager $ALERTMANAGER_URL)"
if alerts=$(curl -fsS -m 3 "$PROMETHEUS_URL/api/v1/alerts" 2>/dev/null); then
  lines=$(jq -r '.data.alerts[] | "\(.state)\t\(.labels.alertname)\t\(.annotations.summary // "")"' <<<"$alerts" | sort -u)
  if [ -z "$lines" ]; then echo "  none firing or pending"; fi
  while IFS=$'\t' read -r state name summary; do
    [ -n "$state" ] || continue
    line=$(printf '  %-8s %-26s %s' "$state" "$name" "$summary")
    if [ "$state" = firing ]; then red "$line"; else echo "$line"; fi
  done <<<"$lines"
else
  echo "  Prometheus not reachable (scripts/prometheus.sh start)"
fi
echo; echo "MORE: the console $CONSOLE_URL (operator token); traces: make traces (Zipkin on 127.0.0.1:$((ZIPKIN_BASE_PORT + OFFSET))); contracts: schemas/openapi/, schemas/asyncapi.yaml"

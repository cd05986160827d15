#!/usr/bin/env bash
# One screen: each process (pid, RSS), each connector and task state, each replication
# slot's lag in bytes, each consumer group's lag.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

echo "PROCESSES"
printf '  %-11s %-8s %-8s %s\n' NAME PID STATE RSS
for n in $COMPONENTS; do
  pid=$(pid_of "$n")
  if alive "$n"; then
    rss=$(ps -o rss= -p "$pid" | awk '{printf "%.0f MiB", $1/1024}')
    printf '  %-11s %-8s %-8s %s\n' "$n" "$pid" up "$rss"
  elif [ -n "$pid" ]; then
    # a pid file whose process is gone, a zombie, or someone else now
    printf '  %-11s %-8s %-8s %s\n' "$n" - down "(stale pid file: $(describe_pid "$pid"))"
  else
    printf '  %-11s %-8s %-8s\n' "$n" - down
  fi
done

echo; echo "CONNECTORS ($CONNECT_URL)"
if names=$(curl -fsS "$CONNECT_URL/connectors" 2>/dev/null); then
  for c in $(echo "$names" | jq -r '.[]' | sort); do
    curl -fsS "$CONNECT_URL/connectors/$c/status" \
      | jq -r '"  \(.name)  connector=\(.connector.state)  tasks=\([.tasks[]? | "\(.id):\(.state)"] | join(","))"'
  done
  [ -n "$(echo "$names" | jq -r '.[]')" ] || echo "  none registered (run: make connectors)"
else
  echo "  Kafka Connect not reachable"
fi

echo; echo "REPLICATION SLOTS (lag = current WAL − confirmed flush; retained = current WAL − restart)"
if pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then
  psql_admin postgres -P pager=off -c "
    select slot_name, database, active,
           pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)) as lag,
           pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) as lag_bytes,
           pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) as retained,
           wal_status
      from pg_replication_slots order by slot_name" | sed 's/^/  /'
else
  echo "  PostgreSQL not reachable"
fi

echo "CONSUMER GROUPS"
if kcat -b "$KAFKA_BOOTSTRAP" -L -m 2 >/dev/null 2>&1; then
  kafka_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server "$KAFKA_BOOTSTRAP" \
    --describe --all-groups 2>/dev/null | awk 'NF && $1 != "Consumer" {printf "  %-18s %-18s %-4s %-8s %-8s %s\n", $1, $2, $3, $4, $5, $6}' \
    | awk '!seen[$0]++'
else
  echo "  Kafka not reachable"
fi

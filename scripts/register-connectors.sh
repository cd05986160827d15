#!/usr/bin/env bash
# Registers (or updates) every connector in connectors/*.json with Kafka Connect's REST API
# and waits until each connector and its task are RUNNING. Idempotent: PUT /connectors/{name}/config
# creates the connector or updates it in place.
#   scripts/register-connectors.sh [connectors/order-outbox.json ...]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

files=("$@")
[ ${#files[@]} -gt 0 ] || files=("$ROOT"/connectors/*.json)

curl -fsS "$CONNECT_URL/" >/dev/null || die "Kafka Connect is not answering on $CONNECT_URL (run: make up)"

# state NAME: RUNNING when the connector and all its tasks run, else what they are
# (STARTING while Connect has not created them yet: status answers 404 for a moment).
state() {
  local status
  status=$(curl -fsS "$CONNECT_URL/connectors/$1/status" 2>/dev/null) || { echo STARTING; return; }
  jq -r '[.connector.state] + [.tasks[]?.state] | if length < 2 then "STARTING" else (unique | join(",")) end' <<<"$status"
}

# trace NAME: the first lines of the error of each failed connector or task of NAME.
trace() {
  curl -fsS "$CONNECT_URL/connectors/$1/status" | jq -r '.connector.trace // empty, (.tasks[]?.trace // empty)' \
    | grep -E '^[A-Za-z].*(Exception|Error)|^Caused by' | head -6
}

# wait_running NAME: waits until connector NAME and its tasks run. A FAILED task is restarted
# once (POST .../restart?onlyFailed=true), loudly: a failure is often one that a configuration
# change just fixed. A task that fails again stops the script with the reason.
wait_running() {
  local name=$1 s start=$SECONDS restarted=
  while :; do
    s=$(state "$name")
    [ "$s" = RUNNING ] && break
    if [[ $s == *FAILED* ]]; then
      if [ -z "$restarted" ]; then
        printf '\n\033[1;31m    connector %s is %s:\033[0m\n' "$name" "$s" >&2
        trace "$name" | sed 's/^/      /' >&2
        printf '\033[1m    restarting its failed tasks\033[0m\n' >&2
        curl -fsS -X POST "$CONNECT_URL/connectors/$name/restart?includeTasks=true&onlyFailed=true" >/dev/null \
          || die "Kafka Connect refused to restart $name"
        restarted=1 start=$SECONDS
        sleep 2
        continue
      fi
      printf '\n\033[1;31m    connector %s FAILED again after the restart:\033[0m\n' "$name" >&2
      trace "$name" | sed 's/^/      /' >&2
      die "connector $name does not run: events of its database are not streamed until this is fixed (full trace: GET $CONNECT_URL/connectors/$name/status; log: $LOGS/connect.log)"
    fi
    if (( SECONDS - start > 60 )); then
      die "connector $name is $s after 60 s (log: $LOGS/connect.log)"
    fi
    printf '\r    waiting for connector %s ... %s %ds' "$name" "$s" $((SECONDS - start))
    sleep 1
  done
  printf '\r    connector %-20s RUNNING (task RUNNING)            \n' "$name"
}

for f in "${files[@]}"; do
  name=$(jq -r .name "$f")
  db=$(jq -r '.config["database.dbname"]' "$f")
  pub=$(jq -r '.config["publication.name"]' "$f")
  # The publication belongs to the service's schema (its messaging migration creates it).
  if ! psql_admin "$db" -tAc "select 1 from pg_publication where pubname = '$pub'" | grep -q 1; then
    die "$db has no publication $pub yet: start the service that owns $db first (it migrates its database)"
  fi
  jq .config "$f" | curl -fsS -X PUT -H 'Content-Type: application/json' --data @- \
    "$CONNECT_URL/connectors/$name/config" >/dev/null || die "Kafka Connect refused $f"
  wait_running "$name"
done

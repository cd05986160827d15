#!/usr/bin/env bash
# Registers (or updates) every connector in connectors/*.json with Kafka Connect's REST API
# and waits until each connector and its task are RUNNING. Idempotent: a connector whose
# stored config equals its file is left alone (a PUT of the same config would restart it);
# otherwise PUT /connectors/{name}/config creates it or updates it in place. A task that
# FAILED (e.g. during an outage) is restarted once; if it fails again, its trace is shown.
#   scripts/register-connectors.sh [connectors/order-outbox.json ...]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

files=("$@")
[ ${#files[@]} -gt 0 ] || files=("$ROOT"/connectors/*.json)
TIMEOUT=${CONNECTOR_TIMEOUT:-120}

# rest METHOD PATH [curl args...]: a Connect REST call, as the REST API's user, that fails on an
# error status. Connect answers 409 during a rebalance and 500 while its herder cannot reach
# Kafka: callers retry.
rest() { local m=$1 p=$2; shift 2; connect_curl -fsS -m 10 -X "$m" "$@" "$CONNECT_URL$p"; }

# Connect's REST server answers before the worker has joined its group: wait until it lists connectors.
if ! await "Kafka Connect to serve requests on $CONNECT_URL" "$TIMEOUT" rest GET /connectors -o /dev/null; then
  [ "$(connect_curl -s -m 10 -o /dev/null -w '%{http_code}' "$CONNECT_URL/connectors")" != 401 ] \
    || die "Kafka Connect on $CONNECT_URL refuses the login $CONNECT_REST_USER (401): CONNECT_REST_PASSWORD is not the password of .stack/connect/rest-users.properties (restart it: scripts/connect.sh stop; make up)"
  die "Kafka Connect does not serve requests on $CONNECT_URL (log: $LOGS/connect.log); is it running (make status)?"
fi

# state NAME: RUNNING when the connector and all its tasks run, else what they are
# (STARTING while Connect has not created them yet: status answers 404 for a moment).
state() {
  local status
  status=$(rest GET "/connectors/$1/status" 2>/dev/null) || { echo STARTING; return; }
  jq -r '[.connector.state] + [.tasks[]?.state] | if length < 2 then "STARTING" else (unique | join(",")) end' <<<"$status"
}

# put_config FILE NAME: stores the file's config unless Connect holds exactly that already.
put_config() {
  local f=$1 name=$2 want
  want=$(jq -S '.config + {name: .name}' "$f")
  [ "$(rest GET "/connectors/$name/config" 2>/dev/null | jq -S . 2>/dev/null)" = "$want" ] && return 0
  jq .config "$f" | rest PUT "/connectors/$name/config" -H 'Content-Type: application/json' --data @- -o /dev/null
}

# trace NAME: in red, the first lines of the error of each failed connector or task of NAME (the
# cause, not Connect's wrapper); the whole trace is in GET /connectors/NAME/status.
trace() {
  rest GET "/connectors/$1/status" | jq -r '.connector.trace // empty, (.tasks[]?.trace // empty)' \
    | grep -E '^[A-Za-z].*(Exception|Error)|^Caused by' | head -6 \
    | while read -r l; do printf '\033[1;31m      %s\033[0m\n' "$l" >&2; done || true
}

for f in "${files[@]}"; do
  name=$(jq -r .name "$f")
  db=$(jq -r '.config["database.dbname"]' "$f")
  pub=$(jq -r '.config["publication.name"]' "$f")
  # The publication belongs to the service's schema (its messaging migration creates it).
  if ! psql_admin "$db" -tAc "select 1 from pg_publication where pubname = '$pub'" | grep -q 1; then
    die "$db has no publication $pub yet: start the service that owns $db first (it migrates its database)"
  fi
  await "Kafka Connect to accept the config of $name" "$TIMEOUT" put_config "$f" "$name" 2>/dev/null \
    || { put_config "$f" "$name" || true; die "Kafka Connect refused $f (log: $LOGS/connect.log)"; }
  t0=${EPOCHREALTIME//[.,]/} restarted_at=
  while :; do
    s=$(state "$name")
    [ "$s" = RUNNING ] && break
    now=${EPOCHREALTIME//[.,]/}
    # A FAILED task is restarted once, loudly (a failure is often one that a configuration change
    # just fixed); one that fails again stops make up with the cause.
    if [[ $s == *FAILED* && -z $restarted_at ]]; then
      progress_end "$(printf '\033[1;31mconnector %s is %s: restarting its failed tasks\033[0m' "$name" "$s")"
      trace "$name"
      rest POST "/connectors/$name/restart?includeTasks=true&onlyFailed=true" -o /dev/null || true
      restarted_at=$now
    elif [[ $s == *FAILED* ]] && (( now - restarted_at > 15000000 )); then
      progress_end "$(printf '\033[1;31mconnector %s FAILED again after the restart:\033[0m' "$name")"
      trace "$name"
      die "connector $name does not run: events of $db are not streamed until this is fixed (full trace: GET $CONNECT_URL/connectors/$name/status; log: $LOGS/connect.log)"
    elif (( now - t0 > TIMEOUT * 1000000 )); then
      progress_end "connector $name is $s"
      trace "$name"
      die "connector $name is $s after $(since "$t0")s (log: $LOGS/connect.log)"
    fi
    progress "waiting for connector $name ... $s $(since "$t0")s"
    sleep 0.5
  done
  progress_end "$(printf 'connector %-20s RUNNING (task RUNNING)' "$name")"
done

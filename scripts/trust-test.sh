#!/usr/bin/env bash
# The stack's trust boundaries as a user of the host meets them (docs/architecture.md,
# "Credentials and roles"); `make test` runs it against the running stack. The Go tests check the
# rest: Kafka's ACLs and the operator endpoints (services/e2e/trust_test.go), the database roles
# (services/messaging/debezium/pipeline_test.go, TestRolesAreConfined).
#   1. the secrets: .stack and .stack/secrets are 0700, every secret file 0600, the operator token
#      one line; Kafka's and PostgreSQL's data directories are nobody else's;
#   2. PostgreSQL: no replication line in pg_hba.conf; a physical replication connection of a
#      Debezium role is refused (what pg_basebackup would need); the well-known superuser
#      password postgres is refused;
#   3. Kafka: `kcat -F .stack/kcat.conf -C -t order-events` as typed in the README reads records;
#      kcat without a login, or with a wrong password, reads nothing; the controller's listener
#      takes nobody but the broker;
#   4. Kafka Connect's REST API: `curl -u "$(cat .stack/connect-credentials)" .../connectors` as
#      typed in the README answers 200; without credentials, with a wrong password or as an unknown
#      user it answers 401 (services/e2e/trust_test.go, TestConnectRESTNeedsALogin, tries every
#      kind of request).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
failures=()
fail() { printf '\033[31m    FAIL\033[0m %s\n' "$*"; failures+=("$*"); }
ok() { echo "    ok   $*"; }

# mode PATH: the file's permission bits (octal) and owner.
mode() { stat -c '%a' "$1"; }

say "secrets and data directories"
for d in "$STACK" "$SECRETS"; do
  [ "$(mode "$d")" = 700 ] && ok "${d#$ROOT/} is 0700" || fail "${d#$ROOT/} is $(mode "$d"), want 700"
done
secret_files=("$STACK/admin-token" "$KCAT_CONF" "$CONNECT_CREDENTIALS" "$KAFKA_CONF" "$STACK/connect/rest-users.properties" "$SECRETS"/*)
bad=0
for f in "${secret_files[@]}"; do
  [ -f "$f" ] || continue
  if [ "$(mode "$f")" != 600 ]; then fail "${f#$ROOT/} is $(mode "$f"), want 600"; bad=1; fi
done
[ $bad = 1 ] || ok "${#secret_files[@]} secret files (admin-token, kcat.conf, connect-credentials, the broker's config, Connect's REST users, secrets/*) are 0600"
[ "$(wc -l <"$STACK/admin-token")" = 1 ] && [ "$(wc -c <"$STACK/admin-token")" -ge 33 ] \
  && ok "admin-token is one line of 32 random characters" || fail "admin-token is not one line of a 32-character token"
for d in "$PG_DATA" "$STACK/kafka/data" "$STACK/connect"; do
  m=$(mode "$d")
  [ $((8#$m & 8#077)) = 0 ] && ok "${d#$ROOT/} is $m: nobody else may read it" || fail "${d#$ROOT/} is $m: others may read it"
done
world=$(find "$STACK" "$PG_DIR" \( -type f -o -type d \) -perm /o+r -print -quit 2>/dev/null || true)
[ -z "$world" ] && ok "nothing under ${STACK#$ROOT/} and $PG_DIR is world-readable" || fail "$world is world-readable"

say "PostgreSQL: no physical replication, no well-known password"
hba=$(as_pg_user cat "$PG_DATA/pg_hba.conf" | grep -vE '^[[:space:]]*(#|$)')
if grep -qwE 'replication' <<<"$hba"; then fail "pg_hba.conf has a replication line: $(grep -w replication <<<"$hba" | head -1)"; else ok "pg_hba.conf has no replication line"; fi
for svc in $SAGA_SERVICES; do
  var=DEBEZIUM_$(upper "$svc")_PG_PASSWORD
  out=$(PGPASSWORD=${!var} PGCONNECT_TIMEOUT=5 psql -X -w "host=$PG_HOST port=$PG_PORT user=debezium_$svc dbname=${svc}_db replication=true" \
    -c 'IDENTIFY_SYSTEM' 2>&1) && fail "debezium_$svc opened a physical replication connection: $out" \
    || { grep -q 'no pg_hba.conf entry for replication connection' <<<"$out" \
      && ok "debezium_$svc: physical replication refused ($(grep -o 'no pg_hba.conf entry for replication connection' <<<"$out"))" \
      || fail "debezium_$svc: physical replication failed for another reason: $out"; }
done
out=$(PGPASSWORD=postgres PGCONNECT_TIMEOUT=5 psql -X -w -h "$PG_HOST" -p "$PG_PORT" -U "$PG_SUPERUSER" -d postgres -c 'select 1' 2>&1) \
  && fail "the superuser logged in with the password postgres" \
  || { grep -q 'password authentication failed' <<<"$out" && ok "the superuser's password is not postgres" || fail "superuser login failed oddly: $out"; }

say "Kafka: kcat with .stack/kcat.conf"
# As typed in the README (plus -e -c 1, to end after one record): the viewer reads order-events.
err=$(mktemp)
if out=$(cd "$ROOT" && timeout 30 kcat -F "${KCAT_CONF#$ROOT/}" -C -t order-events -f '%k %h %s\n' -o beginning -e -c 1 2>"$err") \
  && grep -q 'eventType=' <<<"$out"; then
  ok "kcat -F ${KCAT_CONF#$ROOT/} -C -t order-events reads a record: ${out:0:100}..."
else
  fail "kcat -F ${KCAT_CONF#$ROOT/} -C -t order-events read nothing: $out $(cat "$err")"
fi
rm -f "$err"
out=$(timeout 20 kcat -b "$KAFKA_BOOTSTRAP" -C -t order-events -o beginning -e -c 1 -m 5 2>&1) && [ -n "$out" ] \
  && ! grep -qiE 'error|fail|disconnect|timed out' <<<"$out" && fail "kcat without a login read: ${out:0:120}" \
  || ok "kcat without a login reads nothing"
out=$(timeout 20 kcat -F "$KCAT_CONF" -X sasl.password=wrong-password -C -t order-events -o beginning -e -c 1 -m 5 2>&1) \
  && ! grep -qiE 'error|fail|authenticat' <<<"$out" && fail "kcat with a wrong password read: ${out:0:120}" \
  || ok "kcat with a wrong password reads nothing"

# The controller's listener serves the broker alone: every listener is SASL, and on the
# controller's no login but the admin's works.
map=$(sed -n 's/^listener.security.protocol.map=//p' "$KAFKA_CONF" | tail -1)
if [[ ,$map, =~ :PLAINTEXT, ]] || [[ ,$map, != *,CONTROLLER:SASL_PLAINTEXT,* ]]; then
  fail "the broker has a listener without authentication: $map"
else
  ok "every listener authenticates ($map)"
fi
out=$(timeout 20 kcat -F "$KCAT_CONF" -b "$KAFKA_HOST:$KAFKA_CONTROLLER_PORT" -L -m 5 2>&1) || true
grep -q 'Invalid username or password' <<<"$out" \
  && ok "the controller's listener ($KAFKA_CONTROLLER_PORT) refuses the viewer's login" \
  || fail "the controller's listener did not refuse the viewer's login: $out"

say "Kafka Connect's REST API: HTTP Basic"
# status [CURL-ARGS...]: the HTTP status of GET /connectors.
status() { curl -s -m 10 -o /dev/null -w '%{http_code}' "$@" "$CONNECT_URL/connectors" || true; }
# As typed in the README (with this stack's port).
code=$(cd "$ROOT" && status -u "$(cat "${CONNECT_CREDENTIALS#$ROOT/}")")
[ "$code" = 200 ] && ok "curl -u \"\$(cat ${CONNECT_CREDENTIALS#$ROOT/})\" $CONNECT_URL/connectors: 200" \
  || fail "curl -u \"\$(cat ${CONNECT_CREDENTIALS#$ROOT/})\" $CONNECT_URL/connectors: $code, want 200"
[ "$(head -c 9 "$CONNECT_CREDENTIALS")" = "operator:" ] && [ "$(wc -l <"$CONNECT_CREDENTIALS")" = 1 ] \
  && ok "${CONNECT_CREDENTIALS#$ROOT/} is one line, operator:<password>" || fail "${CONNECT_CREDENTIALS#$ROOT/} is not one line operator:<password>"
for c in "without credentials|" "with a wrong password|-u operator:wrong-password" \
  "as an unknown user|-u mallory:$(read_secret "connect-rest-$CONNECT_REST_USER")" "with an empty password|-u operator:"; do
  # shellcheck disable=SC2086
  code=$(status ${c#*|})
  [ "$code" = 401 ] && ok "GET /connectors ${c%%|*}: 401" || fail "GET /connectors ${c%%|*}: $code, want 401"
done
code=$(status -X POST -H 'Content-Type: application/json' --data '{"name":"trust-spy","config":{"connector.class":"io.debezium.connector.postgresql.PostgresConnector"}}')
[ "$code" = 401 ] && ok "POST /connectors without credentials: 401" || fail "POST /connectors without credentials: $code, want 401"
grep -q '^rest.extension.classes=org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension$' "$CONNECT_CONF" \
  && ok "the worker runs the basic auth extension (${CONNECT_CONF#$ROOT/})" || fail "${CONNECT_CONF#$ROOT/} has no rest.extension.classes"

[ ${#failures[@]} -eq 0 ] || die "trust test failed: ${#failures[@]} problems"
say "trust test passed"

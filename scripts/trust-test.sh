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
#   4. Kafka Connect's REST API: `curl -K .stack/connect.curlrc .../connectors` as
#      typed in the README answers 200; without credentials, with a wrong password or as an unknown
#      user it answers 401 (services/e2e/trust_test.go, TestConnectRESTNeedsALogin, tries every
#      kind of request).
#   5. each process holds only its own secrets: the secret values in every component's environment
#      are exactly its own (the superuser's, an owner's, the REST API's and the injector's
#      passwords and the customer tokens' private key in none), no secret is on any command line;
#   6. Kafka Connect: a connector may override its clients' login and nothing else; the env config
#      provider resolves only the connector secrets' names;
#   7. a base backup over a Debezium role's replication connection (pg_hba.conf cannot refuse it)
#      shows at once on the services' /readyz and in every replication command logged;
#   8. the test-only injector, turned off, may do nothing; root writes nothing inside the
#      postgres-owned cluster directory (a symlink there leads root nowhere);
#   9. run as root, every component runs as an unprivileged OS user (PostgreSQL as postgres, the
#      others as STACK_USER), which owns only its data directories.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
failures=()
fail() { printf '\033[31m    FAIL\033[0m %s\n' "$*"; failures+=("$*"); }
ok() { echo "    ok   $*"; }

# mode PATH: the file's permission bits (octal) and owner.
mode() { stat -c '%a' "$1"; }

say "secrets and data directories"
run_user_ready # RUN_USER: the stack's OS user when root runs it (scripts/lib.sh)
if [ -n "$RUN_USER" ]; then
  [ "$(stat -c '%a %U %G' "$STACK")" = "710 root $RUN_GROUP" ] && ok "${STACK#$ROOT/} is 0710 root:$RUN_GROUP (the stack's OS user may enter it, not list it)" \
    || fail "${STACK#$ROOT/} is $(stat -c '%a %U %G' "$STACK"), want 710 root $RUN_GROUP"
else
  [ "$(mode "$STACK")" = 700 ] && ok "${STACK#$ROOT/} is 0700" || fail "${STACK#$ROOT/} is $(mode "$STACK"), want 700"
fi
[ "$(stat -c '%a %U' "$SECRETS")" = "700 $(id -un)" ] && ok "${SECRETS#$ROOT/} is 0700, $(id -un)'s" || fail "${SECRETS#$ROOT/} is $(stat -c '%a %U' "$SECRETS")"
secret_files=("$STACK/admin-token" "$STACK"/*.header "$STACK/connect.curlrc" "$KCAT_CONF" "$CONNECT_CREDENTIALS" "$SECRETS"/*)
bad=0
for f in "${secret_files[@]}"; do
  [ -f "$f" ] || continue
  if [ "$(mode "$f")" != 600 ]; then fail "${f#$ROOT/} is $(mode "$f"), want 600"; bad=1; fi
done
for f in "$KAFKA_CONF" "$CONNECT_CONF" "$STACK/connect/rest-users.properties"; do
  # Read by the broker and the worker, as the stack's OS user when root runs the stack.
  [ -n "$RUN_USER" ] && [ "$(stat -c '%a %U %G' "$f")" = "640 root $RUN_GROUP" ] && continue
  if [ "$(mode "$f")" != 600 ] && [ -z "$RUN_USER" ]; then fail "${f#$ROOT/} is $(mode "$f"), want 600"; bad=1; fi
done
[ $bad = 1 ] || ok "${#secret_files[@]} secret files (admin-token, kcat.conf, connect-credentials, the broker's config, Connect's REST users, secrets/*) are 0600"
[ "$(wc -l <"$STACK/admin-token")" = 1 ] && [ "$(wc -c <"$STACK/admin-token")" -ge 33 ] \
  && ok "admin-token is one line of 32 random characters" || fail "admin-token is not one line of a 32-character token"
for d in "$PG_DATA" "$STACK/kafka/data" "$STACK/connect"; do
  m=$(mode "$d")
  # 0710 for a directory the stack's OS user enters (root's), 0700 else
  [ $((8#$m & 8#067)) = 0 ] && ok "${d#$ROOT/} is $m: nobody else may read it" || fail "${d#$ROOT/} is $m: others may read it"
done
if [ -n "$RUN_USER" ]; then
  for c in $COMPONENTS; do
    pid=$(pid_of "$c"); [ -n "$pid" ] || continue
    want=$RUN_USER; [ "$c" = postgres ] && want=$PG_OS_USER
    got=$(ps -o user= -p "$pid" | tr -d ' ')
    [ "$got" = "$want" ] && ok "$c runs as $got, not root" || fail "$c runs as $got, want $want"
  done
  [ "$(stat -c %U "$STACK/kafka/data")" = "$RUN_USER" ] && ok "Kafka's data is $RUN_USER's" || fail "Kafka's data is $(stat -c %U "$STACK/kafka/data")'s"
fi
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
code=$(cd "$ROOT" && status -K "${STACK#$ROOT/}/connect.curlrc")
[ "$code" = 200 ] && ok "curl -K ${STACK#$ROOT/}/connect.curlrc $CONNECT_URL/connectors: 200" \
  || fail "curl -K ${STACK#$ROOT/}/connect.curlrc $CONNECT_URL/connectors: $code, want 200"
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

say "every process holds only its own secrets"
# secret_names: name<TAB>value of every secret of the stack (files of .stack/secrets, the operator token).
declare -A secret_of
for f in "$SECRETS"/*; do
  case $f in *.conf | *.properties) continue ;; esac
  secret_of[$(basename "$f")]=$(head -1 "$f")
done
secret_of[admin-token]=$(head -1 "$STACK/admin-token")
# allowed NAME: the secrets component NAME may hold.
allowed() {
  local n=$1 s
  case $n in
    postgres | kafka) ;;
    connect) for s in $SAGA_SERVICES; do echo "pg-debezium_$s kafka-connect-$s"; done ;;
    gatewaysim) echo gateway-merchant ;;
    webhooksink) echo webhook-signing webhooksink-reader ;;
    *)
      echo "pg-${n}_svc kafka-$n admin-token"
      case $n in order | shipping) echo customer-token-pub ;; payment) echo customer-token-pub gateway-merchant ;;
        notification) echo webhook-signing ;; esac ;;
  esac
}
for c in $COMPONENTS; do
  pid=$(pid_of "$c")
  [ -n "$pid" ] && env_of=$( (if [ "$c" = postgres ]; then as_pg_user cat "/proc/$pid/environ"; else cat "/proc/$pid/environ"; fi) 2>/dev/null | tr '\0' '\n') \
    || { fail "$c: no environment to read (is it running?)"; continue; }
  want=" $(allowed "$c" | tr '\n' ' ') " held=() extra=()
  for name in "${!secret_of[@]}"; do
    v=${secret_of[$name]}
    [ ${#v} -ge 16 ] || continue
    if grep -qF -- "$v" <<<"$env_of"; then
      held+=("$name"); [[ $want == *" $name "* ]] || extra+=("$name")
    fi
  done
  if [ ${#extra[@]} -eq 0 ]; then ok "$c holds ${#held[@]} secret(s), its own: ${held[*]:-none}"; else fail "$c holds secrets not its own: ${extra[*]}"; fi
  args=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)
  for name in "${!secret_of[@]}"; do
    v=${secret_of[$name]}
    if [ ${#v} -ge 16 ] && grep -qF -- "$v" <<<"$args"; then fail "$c has the secret $name on its command line"; fi
  done
done

say "Kafka Connect: a connector may override only its login; only connector secrets resolve"
grep -q '^connector.client.config.override.policy=Principal$' "$CONNECT_CONF" \
  && ok "override policy Principal (${CONNECT_CONF#$ROOT/})" || fail "${CONNECT_CONF#$ROOT/}: the override policy is not Principal"
grep -q '^config.providers.env.param.allowlist.pattern=' "$CONNECT_CONF" \
  && ok "the env config provider has an allowlist: $(sed -n 's/^config.providers.env.param.allowlist.pattern=//p' "$CONNECT_CONF")" \
  || fail "the env config provider resolves any variable"
spy='{"name":"trust-override","config":{"connector.class":"io.debezium.connector.postgresql.PostgresConnector","tasks.max":"1",
  "database.hostname":"${env:PG_HOST}","database.port":"${env:PG_PORT}","database.user":"debezium_order",
  "database.password":"${env:DEBEZIUM_ORDER_PG_PASSWORD}","database.dbname":"order_db","topic.prefix":"trustspy",
  "slot.name":"trust_spy","publication.name":"dbz_outbox","publication.autocreate.mode":"disabled","snapshot.mode":"no_data",
  "producer.override.acks":"0"}}'
out=$(connect_curl -s -m 20 -X POST -H 'Content-Type: application/json' --data "$spy" "$CONNECT_URL/connectors" || true)
if grep -q '"error_code":400' <<<"$out" && grep -qi 'override\|policy' <<<"$out"; then
  ok "a connector that overrides producer acks is refused: $(jq -r .message <<<"$out" | head -c 140)"
else
  fail "a connector overriding producer.override.acks was not refused: ${out:0:300}"
  connect_curl -s -m 10 -X DELETE "$CONNECT_URL/connectors/trust-override" >/dev/null || true
fi

say "PostgreSQL: a base backup over a Debezium role shows at once"
bb_log=$(mktemp)
(PGPASSWORD=$DEBEZIUM_ORDER_PG_PASSWORD timeout 20 psql -X -w "host=$PG_HOST port=$PG_PORT user=debezium_order dbname=order_db replication=database" \
  -c "BASE_BACKUP (LABEL 'trust-test', MAX_RATE 32)" >/dev/null 2>"$bb_log" &)
seen=
for _ in $(seq 1 30); do
  r=$(curl -s -m 2 "$ORDER_URL/readyz" || true)
  if grep -q 'base backup' <<<"$r"; then seen=$r; break; fi
  sleep 0.5
done
[ -n "$seen" ] && ok "order's /readyz while debezium_order runs BASE_BACKUP: $(jq -c .degraded <<<"$seen" | head -c 160)" \
  || fail "a base backup by debezium_order did not show on order's /readyz ($(cat "$bb_log"))"
pkill -f "LABEL 'trust-test'" 2>/dev/null || true
psql_admin postgres -tAc "select pg_terminate_backend(pid) from pg_stat_progress_basebackup" >/dev/null 2>&1 || true
rm -f "$bb_log"
grep -q 'received replication command: BASE_BACKUP' "$PG_LOG" 2>/dev/null || as_pg_user grep -q 'received replication command: BASE_BACKUP' "$PG_LOG" \
  && ok "the server log names it (log_replication_commands)" || fail "the server log does not show the BASE_BACKUP"

say "the injector off may do nothing; root writes nothing in the cluster's directory"
was_on=; injector_on && was_on=1
"$ROOT/scripts/injector.sh" off
out=$(echo poison | timeout 20 kcat -F "$SECRETS/kcat-injector.conf" -P -t order-events -k trust-test 2>&1 || true)
sleep 1
grep -qi 'authoriz' <<<"$out" && ok "the injector, off, cannot write order-events: $(grep -oi '[^%]*authoriz[^%]*' <<<"$out" | head -1)" \
  || fail "the injector, off, wrote order-events (or failed oddly): $out"
[ -z "$was_on" ] || "$ROOT/scripts/injector.sh" on
if [ "$(id -u)" = 0 ]; then
  victim=$(mktemp); echo untouched >"$victim"; chmod 600 "$victim"
  as_pg_user ln -sfn "$victim" "$PG_DIR/trust-symlink"
  echo overwritten | pg_write "$PG_DIR/trust-symlink" 2>/dev/null || true
  [ "$(cat "$victim")" = untouched ] && ok "a symlink the postgres user planted in $PG_DIR leads a write nowhere" \
    || fail "a write through a symlink in $PG_DIR reached $victim"
  as_pg_user rm -f "$PG_DIR/trust-symlink"; rm -f "$victim"
  if grep -nE '>>? *"\$PG_(DIR|DATA|LOG)|chown [^-]' "$ROOT/scripts/postgres.sh"; then
    fail "scripts/postgres.sh writes or chowns (following symlinks) inside the cluster's directory as root (lines above)"
  else
    ok "scripts/postgres.sh writes in the cluster's directory only as the postgres user (pg_write)"
  fi
fi

[ ${#failures[@]} -eq 0 ] || die "trust test failed: ${#failures[@]} problems"
say "trust test passed"

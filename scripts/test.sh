#!/usr/bin/env bash
# `make test`: every test of every module, against the real stack.
#   1. gofmt and go vet on every module of go.work;
#   2. the process checks of the scripts (scripts/liveness-test.sh: pid reuse, zombies, locks; no stack);
#   3. a fresh `git clone` into a 0700 directory brings its own stack up, completes an order and
#      is cleaned again (scripts/clone-test.sh; run before this stack starts: one stack at a time);
#   4. the stack: reuse what runs, start what does not (scripts/up.sh);
#   4b. the alert rules' unit tests (scripts/alert-rules-test.sh: promtool test rules, amtool) and
#       the AsyncAPI document linted (scripts/contracts-test.sh; OpenAPI: kin-openapi in go test);
#   5. go test in every module (integration tests talk to the real Postgres, Kafka, Debezium),
#      logged in to Kafka as the test-only principal injector;
#   6. the trust boundaries as a user of the host meets them (scripts/trust-test.sh: secrets'
#      modes, data directories, pg_hba.conf, physical replication, kcat with .stack/kcat.conf,
#      Kafka Connect's REST API without its login: 401);
#   7. SIGKILL each component, one `make up` heals it (scripts/heal-test.sh);
#   8. the short chaos run (scripts/chaos.sh --short: 3 kill cycles under load, one replay of
#      every topic, a little poison and fuzz; the four invariants checked after);
#   9. docker-compose.yml parsed by `docker compose config -q` (or compose-go without the plugin),
#      with the variables of a generated .env, and refused without them;
#  10. stop exactly the components this run started.
#   scripts/test.sh --vet-only   step 1 only
#   CLONE_IN_TEST=0, HEAL_IN_TEST=0, CHAOS_IN_TEST=0 skip steps 3, 7, 8
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

mapfile -t modules < <(go work edit -json | jq -r '.Use[].DiskPath')

say "gofmt and go vet (${#modules[@]} modules)"
unformatted=$(gofmt -l "${modules[@]}")
[ -z "$unformatted" ] || die "gofmt would change: $unformatted"
for m in "${modules[@]}"; do (cd "$m" && go vet ./...) || die "go vet failed in $m"; done
[ "${1:-}" = --vet-only ] && exit 0

mkdir -p "$LOGS"
failed=()

# step LOG NAME CMD...: runs CMD with its output in .stack/logs/LOG. On success it shows the
# log from its last progress line (a test script's summary); on failure the log's tail, and
# records NAME as failed.
step() {
  local log=$LOGS/$1 name=$2; shift 2
  if "$@" >"$log" 2>&1; then
    awk '/==>/ { buf = ""; sub(/^.*==>[^ ]* /, "") } { buf = buf "    " $0 "\n" } END { printf "%s", buf }' "$log"
  else
    tail -n 40 "$log"
    failed+=("$name")
  fi
}

say "process checks of the scripts (log: ${LOGS#$ROOT/}/liveness-test.log)"
step liveness-test.log liveness-test "$ROOT/scripts/liveness-test.sh"

if [ "${CLONE_IN_TEST:-1}" = 0 ]; then
  say "clone test skipped (CLONE_IN_TEST=0)"
else
  say "make up from a fresh clone in a 0700 directory (log: ${LOGS#$ROOT/}/clone-test.log)"
  step clone-test.log clone-test "$ROOT/scripts/clone-test.sh"
fi

started=()
for c in $COMPONENTS; do alive "$c" || started+=("$c"); done
cleanup() {
  local rc=$? c
  ! injector_on || "$ROOT/scripts/injector.sh" off || rc=1
  [ ${#started[@]} -eq 0 ] && exit $rc
  say "stopping what this test run started: ${started[*]}"
  for c in $(reversed $COMPONENTS); do
    if [[ " ${started[*]} " == *" $c "* ]]; then control stop "$c"; fi
  done
  exit $rc
}
trap cleanup EXIT
"$ROOT/scripts/up.sh" >"$LOGS/test-up.log" 2>&1 || { cat "$LOGS/test-up.log"; die "the stack did not come up"; }
say "stack up (log: ${LOGS#$ROOT/}/test-up.log)"

say "alert rules: promtool check and unit tests, Alertmanager's configuration (log: ${LOGS#$ROOT/}/alert-rules-test.log)"
step alert-rules-test.log alert-rules-test "$ROOT/scripts/alert-rules-test.sh"

say "contracts: AsyncAPI parser on schemas/asyncapi.yaml (log: ${LOGS#$ROOT/}/contracts-test.log)"
step contracts-test.log contracts-test "$ROOT/scripts/contracts-test.sh"
# The credentials up.sh made (on a fresh checkout they did not exist when lib.sh was sourced), and
# the tests' Kafka login: the test-only principal.
ensure_secrets
"$ROOT/scripts/injector.sh" on
kafka_as injector

go_failed=
for m in "${modules[@]}"; do
  say "go test $m"
  (cd "$m" && go test -count=1 -timeout 20m ./...) || { failed+=("$m"); go_failed=1; }
done

say "trust boundaries (log: ${LOGS#$ROOT/}/trust-test.log)"
step trust-test.log trust-test "$ROOT/scripts/trust-test.sh"

if [ "${HEAL_IN_TEST:-1}" = 0 ]; then
  say "heal test skipped (HEAL_IN_TEST=0)"
else
  say "heal test: SIGKILL each component, then one make up (log: ${LOGS#$ROOT/}/heal-test.log)"
  step heal-test.log heal-test "$ROOT/scripts/heal-test.sh"
fi

if [ "${CHAOS_IN_TEST:-1}" = 0 ]; then
  say "short chaos run skipped (CHAOS_IN_TEST=0)"
elif [ -n "$go_failed" ]; then
  say "short chaos run skipped: go tests failed"
else
  say "short chaos run (log: ${LOGS#$ROOT/}/chaos-short.log)"
  if "$ROOT/scripts/chaos.sh" --short >"$LOGS/chaos-short.log" 2>&1; then
    # the summary lines, if any (a passing run is a pass even when the format changes)
    sed -n -E 's/^(checked|invariant)/    &/p' "$LOGS/chaos-short.log"
  else
    tail -n 40 "$LOGS/chaos-short.log"; failed+=(chaos-short)
  fi
fi

say "docker-compose.yml"
# With the variables `make compose-env` writes (a throwaway set, not the checkout's .env), the file
# must load; without them it must refuse, naming the way out: no secret has a default.
# Both run with a clean environment: ours holds this stack's credentials under the same names.
envfile=$(mktemp); empty=$(mktemp)
"$ROOT/scripts/compose-env.sh" --print >"$envfile"
clean_env=(env -i PATH="$PATH" HOME="$HOME")
for v in $(compgen -e | grep -E '^DOCKER_' || true); do clean_env+=("$v=${!v}"); done
if docker compose version >/dev/null 2>&1; then
  compose_check() { "${clean_env[@]}" docker compose --env-file "$1" -f "$ROOT/docker-compose.yml" config -q; }
  echo "    docker compose config -q"
else
  # No compose plugin here: load it with compose-go, the loader `docker compose` uses.
  (cd "$ROOT/tools" && go build -o "$ROOT/bin/composecheck" ./cmd/composecheck) || die "build of tools/cmd/composecheck failed"
  compose_check() { "${clean_env[@]}" "$ROOT/bin/composecheck" -env-file "$1" "$ROOT/docker-compose.yml"; }
  echo "    no 'docker compose' on this machine; checking with compose-go (tools/cmd/composecheck)"
fi
if compose_check "$envfile"; then echo "    with the generated .env: ok"; else failed+=(docker-compose.yml); fi
if out=$(compose_check "$empty" 2>&1); then
  echo "    without a .env it loads: a secret has a default"; failed+=(docker-compose-defaults)
elif grep -q 'make compose-env' <<<"$out"; then
  echo "    without a .env: refused, $(grep -o 'required variable [A-Z_]* is missing' <<<"$out" | sort -u | wc -l) secrets missing, naming make compose-env"
else
  echo "    without a .env it fails, but not naming make compose-env: $out"; failed+=(docker-compose-defaults)
fi
rm -f "$envfile" "$empty"

[ ${#failed[@]} -eq 0 ] || die "tests failed in: ${failed[*]}"
say "all tests passed"

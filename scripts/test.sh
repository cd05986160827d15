#!/usr/bin/env bash
# `make test`: every test of every module, against the real stack.
#   1. gofmt and go vet on every module of go.work;
#   2. the stack: reuse what runs, start what does not (scripts/up.sh);
#   3. go test in every module (integration tests talk to the real Postgres, Kafka, Debezium);
#   4. the short chaos run (scripts/chaos.sh --short: 3 kill cycles under load, one replay of
#      every topic, a little poison and fuzz; the four invariants checked after);
#   5. docker-compose.yml parsed by `docker compose config -q` (or compose-go without the plugin);
#   6. stop exactly the components this run started.
#   scripts/test.sh --vet-only   step 1 only;  CHAOS_IN_TEST=0 make test skips step 4
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

mapfile -t modules < <(go work edit -json | jq -r '.Use[].DiskPath')

say "gofmt and go vet (${#modules[@]} modules)"
unformatted=$(gofmt -l "${modules[@]}")
[ -z "$unformatted" ] || die "gofmt would change: $unformatted"
for m in "${modules[@]}"; do (cd "$m" && go vet ./...) || die "go vet failed in $m"; done
[ "${1:-}" = --vet-only ] && exit 0

components="postgres kafka connect gatewaysim order inventory payment"
started=()
for c in $components; do alive "$c" || started+=("$c"); done
cleanup() {
  local rc=$? c
  [ ${#started[@]} -eq 0 ] && exit $rc
  say "stopping what this test run started: ${started[*]}"
  for c in gatewaysim order inventory payment; do
    [[ " ${started[*]} " == *" $c "* ]] && "$ROOT/scripts/services.sh" stop "$c"
  done
  for c in connect kafka postgres; do
    [[ " ${started[*]} " == *" $c "* ]] && "$ROOT/scripts/$c.sh" stop
  done
  exit $rc
}
trap cleanup EXIT
"$ROOT/scripts/up.sh" >"$LOGS/test-up.log" 2>&1 || { cat "$LOGS/test-up.log"; die "the stack did not come up"; }
say "stack up (log: ${LOGS#$ROOT/}/test-up.log)"

failed=()
for m in "${modules[@]}"; do
  say "go test $m"
  (cd "$m" && go test -count=1 -timeout 20m ./...) || failed+=("$m")
done

if [ "${CHAOS_IN_TEST:-1}" = 0 ]; then
  say "short chaos run skipped (CHAOS_IN_TEST=0)"
elif [ ${#failed[@]} -eq 0 ]; then
  say "short chaos run (log: ${LOGS#$ROOT/}/chaos-short.log)"
  "$ROOT/scripts/chaos.sh" --short >"$LOGS/chaos-short.log" 2>&1 \
    && grep -E '^(checked|invariant)' "$LOGS/chaos-short.log" | sed 's/^/    /' \
    || { tail -40 "$LOGS/chaos-short.log"; failed+=(chaos-short); }
else
  say "short chaos run skipped: go tests failed"
fi

say "docker-compose.yml"
if docker compose version >/dev/null 2>&1; then
  docker compose -f "$ROOT/docker-compose.yml" config -q && echo "    docker compose config -q: ok" || failed+=(docker-compose.yml)
else
  # No compose plugin here: load it with compose-go, the loader `docker compose` uses.
  echo "    no 'docker compose' on this machine; checking with compose-go (tools/cmd/composecheck)"
  (cd "$ROOT/tools" && go run ./cmd/composecheck "$ROOT/docker-compose.yml") || failed+=(docker-compose.yml)
fi

[ ${#failed[@]} -eq 0 ] || die "tests failed in: ${failed[*]}"
say "all tests passed"

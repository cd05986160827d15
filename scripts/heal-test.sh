#!/usr/bin/env bash
# `make up` heals a crash. For each component: SIGKILL it, and at once run scripts/up.sh (what
# `make up` runs), once. After that one call the stack must be whole again: the killed
# component runs again (a new process, exactly one), every connector and its task is RUNNING,
# and a plain order completes (scripts/plain-order.sh). Prints the time each step took.
#   scripts/heal-test.sh [component...]     default: every component; the stack must be up
# Logs of each make up: .stack/logs/heal-<component>.log. `make test` runs it (HEAL_IN_TEST=0 skips).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

targets=${*:-$COMPONENTS}
for c in $targets; do
  [[ " $COMPONENTS " == *" $c "* ]] || die "unknown component $c (components: $COMPONENTS)"
done
for c in $COMPONENTS; do
  alive "$c" || die "$c is not running: bring the stack up first (make up)"
done
mkdir -p "$LOGS"

# connectors_running: every connector of connectors/*.json exists, and it and all its tasks are RUNNING.
connectors_running() {
  local want
  want=$(for f in "$ROOT"/connectors/*.json; do jq -r .name "$f"; done | jq -R . | jq -s .)
  connect_curl -fsS -m 10 "$CONNECT_URL/connectors?expand=status" | jq -e --argjson want "$want" '
    [$want[] as $n | .[$n].status | select(. != null)
      | select(.connector.state == "RUNNING" and (.tasks | length) > 0 and all(.tasks[]; .state == "RUNNING"))]
    | length == ($want | length)' >/dev/null
}

failed=() rows=()
for c in $targets; do
  old=$(pid_of "$c")
  log=$LOGS/heal-$c.log
  say "SIGKILL $c (pid $old), then make up at once (log: ${log#$ROOT/})"
  t0=${EPOCHREALTIME//[.,]/}
  kill -KILL "$old"
  if ! "$ROOT/scripts/up.sh" >"$log" 2>&1; then
    tail -n 25 "$log" | sed 's/^/    | /'
    failed+=("$c: make up failed after $(since "$t0")s")
    rows+=("$(printf '%-11s %-9s %s' "$c" FAILED -)")
    say "make up failed; running it once more so that the next components can be tested"
    "$ROOT/scripts/up.sh" >>"$log" 2>&1 || die "the stack does not come up again after the kill of $c (log: $log)"
    continue
  fi
  up_s=$(since "$t0")
  new=$(pid_of "$c") n=$(component_pids "$c" | wc -l)
  problem=
  if ! alive "$c" || [ "$new" = "$old" ]; then
    problem="$c is not running again after make up (pid file: ${new:-none})"
  elif [ "$n" != 1 ]; then
    problem="$n instances of $c run after make up, want 1"
  elif ! connectors_running; then
    problem="not every connector and task is RUNNING after make up: $(connect_curl -sS -m 10 "$CONNECT_URL/connectors?expand=status" | jq -c 'map_values([.status.connector.state, (.status.tasks[]?.state)])')"
  fi
  if [ -n "$problem" ]; then
    echo "    $problem" >&2
    failed+=("$c: $problem")
    rows+=("$(printf '%-11s %-9s %s' "$c" "${up_s}s" "(not whole)")")
    continue
  fi
  echo "    make up healed it in ${up_s}s: $c is pid $new; connectors RUNNING"
  t1=${EPOCHREALTIME//[.,]/}
  if out=$("$ROOT/scripts/plain-order.sh" 120 2>&1); then
    echo "$out" | tail -n 1
    rows+=("$(printf '%-11s %-9s %s' "$c" "${up_s}s" "$(since "$t1")s")")
  else
    echo "$out" | tail -n 3 | sed 's/^/    | /'
    failed+=("$c: no plain order completed after make up")
    rows+=("$(printf '%-11s %-9s %s' "$c" "${up_s}s" FAILED)")
  fi
done

say "heal test: make up after a SIGKILL of each component"
printf '    %-11s %-9s %s\n' killed "make up" "plain order completed after"
printf '    %s\n' "${rows[@]}"
[ ${#failed[@]} -eq 0 ] || die "heal test failed: $(printf '%s; ' "${failed[@]}")"
echo "    heal test passed: ${#rows[@]} kills, each healed by one make up"

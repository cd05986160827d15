#!/usr/bin/env bash
# The alerting configuration (make test runs it, after make up installed promtool and amtool):
#   - the rules load (promtool check rules) and pass their unit tests (promtool test rules
#     infra/prometheus/tests/*.yml);
#   - the retained-WAL threshold is half of max_slot_wal_keep_size in infra/postgres/postgresql.conf;
#   - Alertmanager's configuration, as scripts/prometheus.sh renders it, loads and routes every
#     alert of the rules to the relay with send_resolved (amtool).
# One `ok`/`FAIL` line per check (make test counts them); exit 1 if any failed.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
P=$ROOT/infra/prometheus
failures=0
ok() { echo "    ok   $*"; }
fail() { printf '\033[31m    FAIL\033[0m %s\n' "$*"; failures=$((failures + 1)); }
# check WHAT CMD...: ok when CMD succeeds, else FAIL with its output.
check() {
  local what=$1 out; shift
  if out=$("$@" 2>&1); then ok "$what"; else fail "$what"; sed 's/^/      /' <<<"$out"; fi
}

say "rules: load, unit tests"
check "promtool check rules ($(ls "$P"/rules/*.yml | wc -l) files)" promtool check rules "$P"/rules/*.yml
check "promtool test rules ($(grep -c 'alertname:' "$P"/tests/*.yml | awk -F: '{s += $NF} END {print s}') expectations)" \
  promtool test rules "$P"/tests/*.yml
# every alert has at least one expectation in the tests
for a in $(sed -n 's/^ *- alert: *//p' "$P"/rules/*.yml); do
  if grep -q "alertname: $a\$" "$P"/tests/*.yml; then ok "$a has a unit test"; else fail "$a has no unit test in infra/prometheus/tests"; fi
done

say "retained WAL threshold = max_slot_wal_keep_size / 2"
keep=$(sed -n 's/^max_slot_wal_keep_size *= *\([0-9]*\)\([KMGT]B\).*/\1 \2/p' "$ROOT/infra/postgres/postgresql.conf")
read -r n unit <<<"${keep:-0 GB}"
case $unit in KB) m=10 ;; MB) m=20 ;; GB) m=30 ;; TB) m=40 ;; esac
want=$(( (n << m) / 2 ))
if [ "$n" -gt 0 ] && grep -q "cdc_slot_retained_wal_bytes > $want\$" "$P/rules/pipeline.yml"; then
  ok "ReplicationSlotWALRetained fires above $want bytes, half of max_slot_wal_keep_size ($n$unit)"
else
  fail "ReplicationSlotWALRetained should fire above half of max_slot_wal_keep_size (${n}${unit}: $want bytes)"
fi

say "Alertmanager's configuration as rendered: loads, routes every alert to the relay"
if [ -r "$ALERTMANAGER_CONF" ]; then
  check "amtool check-config" amtool check-config "$ALERTMANAGER_CONF"
  if grep -q '^ *send_resolved: true$' "$ALERTMANAGER_CONF"; then ok "send_resolved: true"; else fail "the relay's send_resolved is not true"; fi
  for a in $(sed -n 's/^ *- alert: *//p' "$P"/rules/*.yml); do
    check "$a routes to the relay" amtool config routes test --config.file="$ALERTMANAGER_CONF" --verify.receivers=relay "alertname=$a"
  done
else
  echo "    not rendered yet ($ALERTMANAGER_CONF): scripts/prometheus.sh start renders and checks it"
fi
[ "$failures" = 0 ]

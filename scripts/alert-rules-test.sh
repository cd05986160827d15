#!/usr/bin/env bash
# The alerting configuration (make test runs it, after make up installed promtool and amtool):
#   - the rules load (promtool check rules) and pass their unit tests (promtool test rules
#     infra/prometheus/tests/*.yml);
#   - the retained-WAL threshold is half of max_slot_wal_keep_size in infra/postgres/postgresql.conf;
#   - Alertmanager's configuration, as scripts/prometheus.sh renders it, loads and routes every
#     alert of the rules to the relay with send_resolved (amtool).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
P=$ROOT/infra/prometheus

say "promtool check rules"
promtool check rules "$P"/rules/*.yml
say "promtool test rules"
promtool test rules "$P"/tests/*.yml

say "retained WAL threshold = max_slot_wal_keep_size / 2"
keep=$(sed -n 's/^max_slot_wal_keep_size *= *\([0-9]*\)\([KMGT]B\).*/\1 \2/p' "$ROOT/infra/postgres/postgresql.conf")
[ -n "$keep" ] || die "max_slot_wal_keep_size not found in infra/postgres/postgresql.conf"
read -r n unit <<<"$keep"
case $unit in KB) m=10 ;; MB) m=20 ;; GB) m=30 ;; TB) m=40 ;; esac
want=$(( (n << m) / 2 ))
grep -q "cdc_slot_retained_wal_bytes > $want\$" "$P/rules/pipeline.yml" \
  || die "rules/pipeline.yml: ReplicationSlotWALRetained should fire above $want bytes (half of max_slot_wal_keep_size = $n$unit)"
echo "    ok: $want bytes, half of $n$unit"

say "amtool check-config (Alertmanager's configuration as rendered)"
if [ -r "$ALERTMANAGER_CONF" ]; then
  amtool check-config "$ALERTMANAGER_CONF"
  say "every alert routes to the relay, resolved messages included"
  grep -q '^ *send_resolved: true$' "$ALERTMANAGER_CONF" || die "alertmanager.yml: the relay's send_resolved is not true"
  for a in $(sed -n 's/^ *- alert: *//p' "$P"/rules/*.yml); do
    amtool config routes test --config.file="$ALERTMANAGER_CONF" --verify.receivers=relay "alertname=$a" >/dev/null 2>&1 \
      || die "alert $a does not route to the relay"
    echo "    $a → relay"
  done
else
  echo "    not rendered yet ($ALERTMANAGER_CONF): scripts/prometheus.sh start renders and checks it"
fi

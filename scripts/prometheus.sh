#!/usr/bin/env bash
# Prometheus and Alertmanager (the Debian packages) for the native stack, data in .stack/.
#   scripts/prometheus.sh start [prometheus|alertmanager]   render the configuration from
#       infra/prometheus/ (prometheus.yml, alertmanager.yml; the rules are read from
#       infra/prometheus/rules/ as they are), start what does not run (default: both,
#       Alertmanager first), reload what runs when its configuration changed
#   scripts/prometheus.sh stop [prometheus|alertmanager]    stop (default: both)
# Both listen on 127.0.0.1 only (PROMETHEUS_PORT, ALERTMANAGER_PORT); Alertmanager runs without
# its cluster (gossip) listener, which would take 9094 on every address. They start with an empty
# environment: Alertmanager reads the operator token it calls the relay with from its file.
# Their processes are the supervisor's (tools/supervisor, through lib.sh's supervise); it calls
# `configure NAME` at every start (and reloads a running one whose configuration changed).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# sed_escape TEXT: TEXT as the replacement of a sed s|…|…| command.
sed_escape() { printf '%s' "$1" | sed 's/[|&\\]/\\&/g'; }

# render NAME TEMPLATE OUT: writes TEMPLATE with every @NAME@ replaced by this stack's value into
# OUT; true when OUT changed.
render() {
  local tmp=$3.new
  sed -e "s|@RULES_DIR@|$(sed_escape "$ROOT/infra/prometheus/rules")|g" \
    -e "s|@ALERTMANAGER_ADDR@|127.0.0.1:$ALERTMANAGER_PORT|g" \
    -e "s|@PROMETHEUS_ADDR@|127.0.0.1:$PROMETHEUS_PORT|g" \
    -e "s|@ORDER_ADDR@|$ORDER_HTTP_ADDR|g" -e "s|@INVENTORY_ADDR@|$INVENTORY_HTTP_ADDR|g" \
    -e "s|@PAYMENT_ADDR@|$PAYMENT_HTTP_ADDR|g" -e "s|@SHIPPING_ADDR@|$SHIPPING_HTTP_ADDR|g" \
    -e "s|@NOTIFICATION_ADDR@|$NOTIFICATION_HTTP_ADDR|g" -e "s|@GATEWAYSIM_ADDR@|$GATEWAYSIM_ADDR|g" \
    -e "s|@WEBHOOKSINK_ADDR@|$WEBHOOKSINK_ADDR|g" \
    -e "s|@RELAY_URL@|$(sed_escape "$NOTIFICATION_URL/alertmanager")|g" \
    -e "s|@RELAY_TOKEN_FILE@|$(sed_escape "$STACK/alertmanager/relay.token")|g" "$2" >"$tmp"
  ! grep -n '^[^#]*@[A-Z_]*@' "$tmp" || die "$2: a placeholder above has no value"
  if cmp -s "$tmp" "$3"; then rm -f "$tmp"; return 1; fi
  mv "$tmp" "$3"
}

# relay_token: .stack/alertmanager/relay.token, the operator token Alertmanager calls the relay
# with (its credentials_file): a copy of .stack/admin-token that the user it runs as may read
# (0640, the group of .stack: the stack's OS user's when root runs the stack), replaced whole.
relay_token() {
  local f=$STACK/alertmanager/relay.token
  head -1 "$STACK/admin-token" | write_secret "$f.new"
  chgrp --reference="$STACK" "$f.new" && chmod 0640 "$f.new" && mv -f "$f.new" "$f"
}

# configure NAME: its configuration rendered and checked, its directories its OS user's.
configure() {
  local n=$1 dir=$STACK/$1 conf
  mkdir -p "$dir/data" "$LOGS" "$PIDS"
  if [ "$n" = prometheus ]; then
    conf=$PROMETHEUS_CONF
    render "$n" "$ROOT/infra/prometheus/prometheus.yml" "$conf" || true
    promtool check config "$conf" >"$LOGS/$n-check.log" 2>&1 || { cat "$LOGS/$n-check.log" >&2; die "Prometheus' configuration is invalid"; }
  else
    conf=$ALERTMANAGER_CONF
    render "$n" "$ROOT/infra/prometheus/alertmanager.yml" "$conf" || true
    relay_token
    amtool check-config "$conf" >"$LOGS/$n-check.log" 2>&1 || { cat "$LOGS/$n-check.log" >&2; die "Alertmanager's configuration is invalid"; }
  fi
  # It runs as the stack's OS user (scripts/lib.sh, run_user_ready): it reads its configuration
  # and owns its data.
  run_user_ready
  enterable_by_run_user "$dir"
  readable_by_run_user "$conf"
  owned_by_run_user "$dir/data"
}

cmd=${1:-start}; shift || true
names=${*:-$MONITORING}
for n in $names; do [[ " $MONITORING " == *" $n "* ]] || die "unknown component $n (these: $MONITORING)"; done
case $cmd in
  start | stop) supervise "$cmd" $names ;;
  configure) for n in $names; do configure "$n"; done ;;
  *) die "usage: $0 start|stop [prometheus|alertmanager] (configure: the supervisor's step)" ;;
esac

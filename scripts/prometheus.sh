#!/usr/bin/env bash
# Prometheus and Alertmanager (the Debian packages) for the native stack, data in .stack/.
#   scripts/prometheus.sh start [prometheus|alertmanager]   start what does not run (default: both,
#       Alertmanager first), reload what runs when its configuration changed
#   scripts/prometheus.sh stop [prometheus|alertmanager]    stop (default: both)
# The supervisor (tools/supervisor) renders their configuration from infra/prometheus/
# (prometheus.yml, alertmanager.yml; the rules are read from infra/prometheus/rules/ as they are)
# and checks it (promtool, amtool). Both listen on 127.0.0.1 only (PROMETHEUS_PORT,
# ALERTMANAGER_PORT); Alertmanager runs without its cluster (gossip) listener, which would take
# 9094 on every address. They start with an empty environment: Alertmanager reads the operator
# token it calls the relay with from its file (.stack/alertmanager/relay.token).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cmd=${1:-start}; shift || true
names=${*:-$MONITORING}
for n in $names; do [[ " $MONITORING " == *" $n "* ]] || die "unknown component $n (these: $MONITORING)"; done
case $cmd in
  start | stop) supervise "$cmd" $names ;;
  *) die "usage: $0 start|stop [prometheus|alertmanager]" ;;
esac

#!/usr/bin/env bash
# Kafka Connect (distributed mode) with the Debezium Postgres connector plugin.
#   scripts/connect.sh start   start the worker, wait until its REST API lists the Debezium plugin
#   scripts/connect.sh stop    stop the worker (SIGTERM, SIGKILL after 30 s)
# The supervisor (tools/supervisor) writes the worker's configuration (.stack/connect: its own Kafka
# login, the REST API's users) and starts it with an empty environment plus what the connector
# JSON reads through the env config provider.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
case ${1:-start} in
  start | stop) supervise "${1:-start}" connect ;;
  *) die "usage: $0 start|stop" ;;
esac

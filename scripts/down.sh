#!/usr/bin/env bash
# Stops exactly the processes that scripts/up.sh started (recorded in .stack/pids), in
# reverse order. Data stays in .stack (PostgreSQL, Kafka); `make clean` removes it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
"$ROOT/scripts/services.sh" stop
"$ROOT/scripts/connect.sh" stop
"$ROOT/scripts/kafka.sh" stop
"$ROOT/scripts/postgres.sh" stop

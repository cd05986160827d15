#!/usr/bin/env bash
# Stops exactly the processes that scripts/up.sh started (recorded in .stack/pids, each checked
# to really be that component), in reverse order. Data stays (PostgreSQL, Kafka); `make clean`
# removes it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
for c in $(reversed $COMPONENTS); do control stop "$c"; done

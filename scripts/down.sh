#!/usr/bin/env bash
# Stops exactly the processes that scripts/up.sh started (each checked to really be that
# component: .stack/pids records pid, start time and executable), in reverse order; with names,
# those only. Data stays (PostgreSQL, Kafka); `make clean` removes it.
#   scripts/down.sh [component...]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
supervise stop "$@"

#!/usr/bin/env bash
# Places one plain order on the running stack and waits until it is COMPLETED: the smallest proof
# that the whole pipeline works (tools/plainorder, which the tests use too).
#   scripts/plain-order.sh [TIMEOUT_SECONDS]     (default 120)
set -euo pipefail
. "$(dirname "$0")/lib.sh" # the stack's addresses and credentials (STACK_PORT_OFFSET, STACK_DIR)
cd "$ROOT/tools" && exec go run ./cmd/plainorder -timeout "${1:-120}s"

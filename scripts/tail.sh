#!/usr/bin/env bash
# Follows a topic with kcat, printing partition, offset, key, headers and value.
#   scripts/tail.sh order-events [kcat offset: beginning|end|-10 ...]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
topic=${1:?usage: $0 TOPIC [offset]}
exec kcat -b "$KAFKA_BOOTSTRAP" -C -t "$topic" -o "${2:-beginning}" -u \
  -f '\n%t[%p]@%o  key=%k\n  headers: %h\n  value:   %s\n'

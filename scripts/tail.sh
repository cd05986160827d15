#!/usr/bin/env bash
# Follows a topic with kcat, printing partition, offset, key, headers and value. kcat logs in as
# the read-only principal viewer (.stack/kcat.conf, written by make up).
#   scripts/tail.sh order-events [kcat offset: beginning|end|-10 ...]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
topic=${1:?usage: $0 TOPIC [offset]}
[ -r "$KCAT_CONF" ] || die "no $KCAT_CONF: bring the stack up first (make up)"
exec kcat -F "$KCAT_CONF" -C -t "$topic" -o "${2:-beginning}" -u \
  -f '\n%t[%p]@%o  key=%k\n  headers: %h\n  value:   %s\n'

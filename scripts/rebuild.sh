#!/usr/bin/env bash
# Rebuilds every projection of the services that have them from their event log into fresh
# tables, compares them with the live ones and prints one line per service,
# `<service>: rebuilt N <things>: D differences`; exits 1 if any D > 0. The services keep running.
#   scripts/rebuild.sh          compare only (make rebuild)
#   SWAP=1 scripts/rebuild.sh   also put the rebuilt rows in place of the differing ones (make rebuild SWAP=1)
# Today the order service is the one with an event log (docs/architecture.md, "The order is
# event-sourced"). It runs as the database's owner (the fresh tables, the locks of SWAP=1).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

args=()
[ "${SWAP:-0}" = 1 ] && args+=(-swap)
"$ROOT/scripts/services.sh" build order >/dev/null
status=0
(only_env "ORDER_MIGRATIONS_DATABASE_URL=$ORDER_MIGRATIONS_DATABASE_URL" -- "$ROOT/bin/order" rebuild ${args[@]+"${args[@]}"}) || status=$?
exit "$status"

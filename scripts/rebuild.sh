#!/usr/bin/env bash
# Rebuilds every projection of the services that have them from their event log into fresh
# tables, compares them with the live ones and prints one line per service,
# `<service>: rebuilt N <things>: D differences`; exits 1 if any D > 0. The services keep running.
#   scripts/rebuild.sh          compare only (make rebuild)
#   SWAP=1 scripts/rebuild.sh   also put the rebuilt rows in place of the differing ones (make rebuild SWAP=1)
# The order service folds its event store (docs/architecture.md, "The order is event-sourced"); the
# catalog reads its topics from their first offsets into fresh tables (schema catalog_rebuild,
# dropped after) and compares (SWAP does not apply: run it at quiescence, the catalog's lag shows
# as differences). Both run as their database's owner (the fresh tables, the locks of SWAP=1).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

args=()
[ "${SWAP:-0}" = 1 ] && args+=(-swap)
"$ROOT/scripts/services.sh" build order catalog >/dev/null
status=0
(only_env "ORDER_MIGRATIONS_DATABASE_URL=$ORDER_MIGRATIONS_DATABASE_URL" -- "$ROOT/bin/order" rebuild ${args[@]+"${args[@]}"}) || status=$?
(only_env "CATALOG_MIGRATIONS_DATABASE_URL=$CATALOG_MIGRATIONS_DATABASE_URL" "CATALOG_KAFKA_BROKERS=$CATALOG_KAFKA_BROKERS" \
  "CATALOG_KAFKA_USERNAME=$CATALOG_KAFKA_USERNAME" "CATALOG_KAFKA_PASSWORD=$CATALOG_KAFKA_PASSWORD" \
  ${CATALOG_RANKING_TZ:+"CATALOG_RANKING_TZ=$CATALOG_RANKING_TZ"} ${RANKING_TZ:+"RANKING_TZ=$RANKING_TZ"} \
  -- "$ROOT/bin/catalog" rebuild) || status=$?
exit "$status"

#!/usr/bin/env bash
# `make clean`: stops the stack and deletes everything it wrote: .stack/ (data, logs, jars,
# pids, secrets), the PostgreSQL cluster (which lives outside .stack when run as root, see
# scripts/postgres.sh) and bin/.
#   scripts/clean.sh data   the same, but keeps the logs (.stack/logs), the jars (.stack/lib) and
#                           bin/: what `make test` does at its end to a stack it made from nothing
set -euo pipefail
. "$(dirname "$0")/lib.sh"

case $STACK in
  / | "$ROOT" | "$(realpath -m "$HOME")") die "refusing to delete STACK_DIR=$STACK: it is not a stack directory" ;;
esac
"$ROOT/scripts/down.sh"
"$ROOT/scripts/postgres.sh" clean
if [ "${1:-}" = data ]; then
  say "deleting the stack's data and secrets in ${STACK#$ROOT/} (keeping logs/ and lib/)"
  for e in "$STACK"/* "$STACK"/.[!.]*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    case ${e##*/} in logs | lib) ;; *) rm -rf "$e" ;; esac
  done
  exit 0
fi
say "deleting ${STACK#$ROOT/} and bin/"
rm -rf "$STACK" "$ROOT/bin"

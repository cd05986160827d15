#!/usr/bin/env bash
# `make clean`: stops the stack and deletes everything it wrote: .stack/ (data, logs, jars,
# pids, secrets), the PostgreSQL cluster (which lives outside .stack when run as root, see
# scripts/postgres.sh) and bin/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

case $STACK in
  / | "$ROOT" | "$(realpath -m "$HOME")") die "refusing to delete STACK_DIR=$STACK: it is not a stack directory" ;;
esac
"$ROOT/scripts/down.sh"
"$ROOT/scripts/postgres.sh" clean
say "deleting ${STACK#$ROOT/} and bin/"
rm -rf "$STACK" "$ROOT/bin"

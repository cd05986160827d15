#!/usr/bin/env bash
# `make clean`: stops the stack and deletes everything it wrote: .stack/ (data, logs, jars, pids,
# secrets), the PostgreSQL cluster (outside .stack when run as root) and bin/.
#   scripts/clean.sh data   the same, but keeps .stack/logs, .stack/lib and bin/ (what make test
#                           does at its end to a stack it made from nothing)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
supervise clean "$@"

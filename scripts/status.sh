#!/usr/bin/env bash
# `make status`: processes, services' /readyz, connectors, replication slots, consumer groups,
# alerts (tools/supervisor/report.go).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
supervise status

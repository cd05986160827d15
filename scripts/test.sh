#!/usr/bin/env bash
# `make test`: every test of every module against the real stack (tools/cmd/maketest says the
# steps); its last line is `N passed, M failed`.
#   scripts/test.sh --vet-only   gofmt and go vet only
#   CLONE_IN_TEST=0, HEAL_IN_TEST=0, TRACES_IN_TEST=0, CHAOS_IN_TEST=0 skip steps
set -euo pipefail
. "$(dirname "$0")/lib.sh"
(cd "$ROOT/tools" && go build -o "$ROOT/bin/maketest" ./cmd/maketest) || die "build of tools/cmd/maketest failed"
supervisor_env
ROOT=$ROOT exec "$ROOT/bin/maketest" ${1:+-${1#--}}

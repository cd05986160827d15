#!/usr/bin/env bash
# `make compose-env`: the secrets of the docker compose stack, in the .env that docker compose
# reads next to docker-compose.yml (mode 0600, git-ignored; tools/supervisor/secrets.go, ComposeEnv).
#   scripts/compose-env.sh            write or complete .env (a variable already there is kept)
#   scripts/compose-env.sh --print    print a fresh set instead
set -euo pipefail
. "$(dirname "$0")/lib.sh"
supervise compose-env "$@"

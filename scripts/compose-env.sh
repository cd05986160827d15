#!/usr/bin/env bash
# `make compose-env`: the secrets of the docker compose stack, in the .env that docker compose
# reads next to docker-compose.yml (mode 0600, git-ignored). Random, one per role and principal,
# like the native stack's .stack/secrets: the PostgreSQL superuser (PG_SUPERPASS), every role of
# every service database (<ROLE>_PG_PASSWORD), every Kafka principal (<PRINCIPAL>_KAFKA_PASSWORD,
# admin included), the operator token (ADMIN_TOKEN) and the password of Connect's REST API
# (CONNECT_REST_PASSWORD, user operator). A variable already in .env is kept (the
# database volume was initialized with it); a missing one is added.
# docker-compose.yml has no default for any of them: without this file it refuses to start.
#   scripts/compose-env.sh            write or complete .env
#   scripts/compose-env.sh --print    print a fresh set instead (make test checks the compose file with it)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# names: every variable the compose file needs.
names() {
  local r p
  echo PG_SUPERPASS
  for r in $(pg_roles); do echo "$(upper "$r")_PG_PASSWORD"; done
  for p in $(kafka_principals); do echo "$(upper "$p")_KAFKA_PASSWORD"; done
  echo ADMIN_TOKEN
  echo CONNECT_REST_PASSWORD
}

if [ "${1:-}" = --print ]; then
  for n in $(names); do echo "$n=$(random_secret)"; done
  exit 0
fi

env=$ROOT/.env
[ -e "$env" ] || { echo "# docker compose's secrets (scripts/compose-env.sh; never commit this file)" | write_secret "$env"; }
chmod 600 "$env"
added=0
for n in $(names); do
  grep -q "^$n=" "$env" || { echo "$n=$(random_secret)" >>"$env"; added=$((added + 1)); }
done
say "${env#$ROOT/}: $added secrets added, $(names | wc -l) in all (mode $(stat -c %a "$env"))"

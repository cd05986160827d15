#!/usr/bin/env bash
# Creates, or brings up to date, every service database and its roles (infra/postgres/init.sql,
# once per database) and the group role debezium. Idempotent. Run as the superuser:
#   - by scripts/postgres.sh at every start of the native cluster (PGHOST, PGPORT, PGUSER and
#     PGPASSWORD point psql at it);
#   - by the postgres container of docker-compose.yml from /docker-entrypoint-initdb.d, once, when
#     it initializes its data directory (no PG* variables: its socket, as postgres).
# Reads: PG_SERVICES (the service databases, <svc>_db each), the password of every role in
# <ROLE>_PG_PASSWORD (ORDER_OWNER_PG_PASSWORD, ORDER_SVC_PG_PASSWORD, DEBEZIUM_ORDER_PG_PASSWORD,
# ...), and INIT_SQL (default: init.sql next to this script).
set -euo pipefail
sql=${INIT_SQL:-$(dirname "${BASH_SOURCE[0]}")/init.sql}
services=${PG_SERVICES:-order inventory payment shipping notification}
psql=(psql -X -q -v ON_ERROR_STOP=1 --no-password -U "${PGUSER:-${POSTGRES_USER:-postgres}}" -d postgres)
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" # no NOTICE for what exists already

# password ROLE: the role's password from <ROLE>_PG_PASSWORD; a missing one stops the script.
password() {
  local var; var=$(tr 'a-z-' 'A-Z_' <<<"$1")_PG_PASSWORD
  [ -n "${!var:-}" ] || { echo "init.sh: $var is not set (the password of role $1)" >&2; exit 1; }
  printf '%s' "${!var}"
}

# The group role that holds what the connectors may read and write; nobody logs in as it.
"${psql[@]}" <<'SQL'
SELECT 'CREATE ROLE debezium' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'debezium') \gexec
ALTER ROLE debezium WITH NOLOGIN NOREPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE;
SQL
for svc in $services; do
  OWNER_PG_PASSWORD=$(password "${svc}_owner") RUNTIME_PG_PASSWORD=$(password "${svc}_svc") \
    CDC_PG_PASSWORD=$(password "debezium_${svc}") "${psql[@]}" -v svc="$svc" -f "$sql"
done

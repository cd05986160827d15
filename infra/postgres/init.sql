-- One database and one role per service, plus the Debezium role.
-- Run once by the superuser when the cluster is created: by scripts/postgres.sh on the
-- native stack, by the postgres image's /docker-entrypoint-initdb.d in docker-compose.
-- Passwords are for local development only; production takes them from a secret store.

-- Debezium streams the WAL: REPLICATION, never superuser. It gets CONNECT on each
-- service database and, through the services' messaging migration, SELECT on the outbox
-- and heartbeat tables and INSERT/UPDATE on the heartbeat table. Nothing else: it cannot
-- write a business table.
CREATE ROLE debezium WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD 'debezium';

CREATE ROLE order_svc WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD 'order_svc';
CREATE ROLE inventory_svc WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD 'inventory_svc';
CREATE ROLE payment_svc WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD 'payment_svc';

CREATE DATABASE order_db OWNER order_svc;
CREATE DATABASE inventory_db OWNER inventory_svc;
CREATE DATABASE payment_db OWNER payment_svc;

-- A service's role reaches its own database only (PUBLIC has CONNECT by default).
REVOKE ALL ON DATABASE order_db FROM PUBLIC;
REVOKE ALL ON DATABASE inventory_db FROM PUBLIC;
REVOKE ALL ON DATABASE payment_db FROM PUBLIC;
GRANT CONNECT ON DATABASE order_db TO debezium;
GRANT CONNECT ON DATABASE inventory_db TO debezium;
GRANT CONNECT ON DATABASE payment_db TO debezium;

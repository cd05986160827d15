-- One service database and its three roles. Idempotent: it creates what is missing and sets
-- every password and privilege again. infra/postgres/init.sh runs it as the superuser, once per
-- service database (psql -v svc=order), with the passwords in OWNER_PG_PASSWORD,
-- RUNTIME_PG_PASSWORD and CDC_PG_PASSWORD (never on a command line).
--
--   <svc>_owner     owns <svc>_db and every table in it; the service's migrations run as it
--                   (<SVC>_MIGRATIONS_DATABASE_URL) and create the publication dbz_outbox.
--   <svc>_svc       the service at run time (<SVC>_DATABASE_URL): SELECT, INSERT, UPDATE, DELETE
--                   on the owner's tables and its sequences, given by ALTER DEFAULT PRIVILEGES
--                   below. It cannot create, alter or drop anything (no CREATE on the schema, not
--                   the owner), nor make temporary tables (no TEMP on the database).
--   debezium_<svc>  the Debezium connector of this database (connectors/<svc>-outbox.json):
--                   REPLICATION (logical slots; pg_hba.conf allows no physical replication) and
--                   CONNECT to this database only. A member of the group role debezium, to which
--                   the messaging migration grants SELECT on the outbox and the heartbeat table
--                   and INSERT, UPDATE on the heartbeat table: nothing else.
-- A service's roles reach its own database only (PUBLIC has no CONNECT).

\set ON_ERROR_STOP on
\getenv owner_password OWNER_PG_PASSWORD
\getenv runtime_password RUNTIME_PG_PASSWORD
\getenv cdc_password CDC_PG_PASSWORD
\set db :svc _db
\set owner :svc _owner
\set runtime :svc _svc
\set cdc debezium_ :svc

SELECT format('CREATE ROLE %I', r) FROM unnest(ARRAY[:'owner', :'runtime', :'cdc']) AS r
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) \gexec
ALTER ROLE :"owner" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'owner_password';
ALTER ROLE :"runtime" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'runtime_password';
ALTER ROLE :"cdc" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE REPLICATION NOBYPASSRLS PASSWORD :'cdc_password';
GRANT debezium TO :"cdc";

SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO :"runtime", :"cdc";

\connect :"db"
-- Since PostgreSQL 15 PUBLIC may not create in the schema public; its owner (the database's
-- owner) may. Said again here so that it holds on any version.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"runtime";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO :"runtime";

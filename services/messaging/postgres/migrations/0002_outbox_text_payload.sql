-- The outbox payload is the Kafka value byte for byte: text, carried through Kafka Connect by the
-- StringConverter without being parsed (connectors/*.json: table.expand.json.payload=false).
-- jsonb would have Postgres rewrite it (key order, spacing) and made Connect parse and re-encode
-- it, turning large integers into floats. The table is always empty (rows are deleted in the
-- transaction that inserts them), so the change is instant. See docs/architecture.md.
ALTER TABLE outbox ALTER COLUMN payload TYPE text;

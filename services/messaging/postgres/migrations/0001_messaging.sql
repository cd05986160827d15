-- Shared messaging tables of every service database: the outbox (the contract with Debezium),
-- the heartbeat table, the inbox and the dead letters. See docs/architecture.md.

CREATE TABLE outbox (
  id            uuid PRIMARY KEY,      -- the event id → Kafka header `id`
  aggregatetype text NOT NULL,         -- 'order' | 'inventory' | 'payment' | 'dead-letter' → topic '<value>-events'
  aggregateid   text NOT NULL,         -- the order id → Kafka key
  type          text NOT NULL,         -- the event type → Kafka header `eventType`
  payload       jsonb NOT NULL,        -- the whole envelope → Kafka value (text since 0002)
  traceparent   text NOT NULL,         -- W3C traceparent → Kafka header `traceparent`
  created_at    timestamptz NOT NULL DEFAULT now()
);

-- Debezium reads only the INSERTs; rows are deleted in the same transaction (see InsertOutbox).
ALTER TABLE outbox REPLICA IDENTITY DEFAULT;

-- Upserted by the connector's heartbeat.action.query so an idle database's slot advances.
CREATE TABLE debezium_heartbeat (
  id int PRIMARY KEY,
  ts timestamptz NOT NULL
);

-- The inbox: one row per event that took effect. A conflict on event_id means "already done".
CREATE TABLE processed_events (
  event_id     uuid PRIMARY KEY,
  event_type   text NOT NULL,
  topic        text NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now()
);

-- Poison messages, stored byte for byte so an operator can replay them.
-- service and event_type are additions to the column list in docs/architecture.md; the unique
-- key makes storing the same Kafka record twice (redelivery after a crash) a no-op.
CREATE TABLE dead_letters (
  id           bigserial PRIMARY KEY,
  service      text NOT NULL,
  event_id     text NOT NULL DEFAULT '',   -- '' when the message was undecodable
  event_type   text NOT NULL DEFAULT '',
  topic        text NOT NULL,
  partition    int NOT NULL,
  "offset"     bigint NOT NULL,
  key          text NOT NULL DEFAULT '',
  headers      jsonb NOT NULL DEFAULT '{}',
  value        bytea,
  error        text NOT NULL,
  attempts     int NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  replayed_at  timestamptz,
  replay_error text,
  UNIQUE (service, topic, partition, "offset")
);

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'dbz_outbox') THEN
    CREATE PUBLICATION dbz_outbox FOR TABLE outbox, debezium_heartbeat;
  END IF;
END
$$;

-- The Debezium role may read the outbox and write its heartbeat, nothing else.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'debezium') THEN
    GRANT SELECT ON outbox, debezium_heartbeat TO debezium;
    GRANT INSERT, UPDATE ON debezium_heartbeat TO debezium;
  END IF;
END
$$;

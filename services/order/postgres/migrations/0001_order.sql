-- The order service's own tables. The shared messaging tables (outbox, inbox, dead letters)
-- come from postgres.MigrateMessaging, which runs first.

CREATE TABLE orders (
  id              uuid PRIMARY KEY,
  customer_id     text NOT NULL,
  status          text NOT NULL CHECK (status IN ('PENDING', 'COMPLETED', 'CANCELED')),
  reason          text NOT NULL DEFAULT '' CHECK (reason IN ('', 'OUT_OF_STOCK', 'PAYMENT_FAILED', 'TIMEOUT')),
  currency        text NOT NULL,
  amount          bigint NOT NULL CHECK (amount >= 0),
  payment_token   text NOT NULL,
  trace_id        text NOT NULL,
  -- NULL when the client sent no Idempotency-Key; NULLs never conflict.
  idempotency_key text UNIQUE,
  -- sha256 of the canonical request, to tell a retry from a different request under the same key.
  request_hash    text NOT NULL,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  deadline_at     timestamptz NOT NULL,
  -- A canceled order has a reason, any other has none.
  CHECK ((status = 'CANCELED') = (reason <> ''))
);

-- The deadline sweeper's scan: PENDING orders by deadline.
CREATE INDEX orders_status_deadline ON orders (status, deadline_at);

CREATE TABLE order_items (
  order_id   uuid NOT NULL REFERENCES orders (id),
  line       int NOT NULL,
  sku        text NOT NULL,
  qty        bigint NOT NULL CHECK (qty >= 1),
  unit_price bigint NOT NULL CHECK (unit_price >= 0),
  PRIMARY KEY (order_id, line)
);

-- The saga timeline: every event the order emitted or consumed, in the order it was recorded.
CREATE TABLE order_timeline (
  seq         bigserial PRIMARY KEY,
  event_id    uuid NOT NULL UNIQUE,
  order_id    uuid NOT NULL REFERENCES orders (id),
  event_type  text NOT NULL,
  source      text NOT NULL,       -- 'order-service' for events we emit, else the topic
  occurred_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  data        jsonb NOT NULL
);

CREATE INDEX order_timeline_order ON order_timeline (order_id, seq);

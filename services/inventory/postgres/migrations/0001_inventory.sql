-- The inventory service's own tables. The messaging tables (outbox, inbox, dead letters) come
-- from services/messaging and are migrated first.

-- Stock per SKU. Invariant 2 (docs/architecture.md, Inventory): initial stock = available +
-- reserved + sold; the checks make a bug that would drive a count below zero fail its
-- transaction instead of corrupting it.
CREATE TABLE stock (
  sku        text PRIMARY KEY,
  available  bigint NOT NULL CHECK (available >= 0),
  reserved   bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0),
  sold       bigint NOT NULL DEFAULT 0 CHECK (sold >= 0),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per order inventory has seen. Its existence is what makes a second OrderCreated for
-- the same order (a different event id) a no-op; only RESERVED holds stock.
CREATE TABLE reservations (
  order_id   text PRIMARY KEY,
  status     text NOT NULL CHECK (status IN ('RESERVED', 'RELEASED', 'COMMITTED', 'FAILED')),
  items      jsonb NOT NULL,
  reason     text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

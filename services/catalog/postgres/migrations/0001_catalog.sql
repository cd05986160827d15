-- The catalog service's read models, kept from inventory-events and order-events. The messaging
-- tables (outbox, inbox, dead letters) come from services/messaging and are migrated first.
-- Every table here can be rebuilt from the topics (make rebuild).

-- One row per SKU the catalog heard of (a StockDepleted/StockReplenished, or a completed order).
-- state_as_of is the occurredAt of the stock event that set sold_out: an older one (a replay)
-- never overwrites it.
CREATE TABLE products (
  sku          text PRIMARY KEY,
  sold_out     boolean NOT NULL DEFAULT false,
  sold_out_at  timestamptz,
  state_as_of  timestamptz,
  units_sold   bigint NOT NULL DEFAULT 0 CHECK (units_sold >= 0),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CHECK (sold_out = (sold_out_at IS NOT NULL))
);

-- The completed orders counted, once each whatever the redeliveries (under any event id).
CREATE TABLE counted_orders (
  order_id     text PRIMARY KEY,
  day          date NOT NULL,
  completed_at timestamptz NOT NULL
);

-- Per day (in the ranking's zone) and SKU: units and orders of the orders completed that day.
CREATE TABLE daily_sales (
  day    date NOT NULL,
  sku    text NOT NULL,
  units  bigint NOT NULL CHECK (units > 0),
  orders bigint NOT NULL CHECK (orders > 0),
  PRIMARY KEY (day, sku)
);

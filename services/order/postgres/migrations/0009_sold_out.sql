-- What the order service knows of the inventory's sold-out SKUs, from StockDepleted and
-- StockReplenished (inventory-events, keyed by SKU). POST /orders refuses a SKU whose row says
-- sold_out with 409 sold_out; before the event arrives the saga ends OUT_OF_STOCK as ever (the
-- intended eventual consistency, docs/architecture.md "Sold out"). as_of is the event's
-- occurredAt: an older event (a replay) never overwrites a newer state.
CREATE TABLE sku_availability (
  sku        text PRIMARY KEY,
  sold_out   boolean NOT NULL,
  as_of      timestamptz NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- The price list: the order service owns what a SKU costs (an operator sets it with
-- PUT /prices/{sku}); an order keeps the list price it was placed at (order_items.unit_price).
CREATE TABLE prices (
  sku        text PRIMARY KEY,
  unit_price bigint NOT NULL CHECK (unit_price BETWEEN 0 AND 1000000000000),
  currency   text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- An Idempotency-Key is the customer's: the same key from another customer is another order, and
-- a conflict never points at somebody else's order.
ALTER TABLE orders DROP CONSTRAINT orders_idempotency_key_key;
ALTER TABLE orders ADD CONSTRAINT orders_customer_idempotency_key UNIQUE (customer_id, idempotency_key);

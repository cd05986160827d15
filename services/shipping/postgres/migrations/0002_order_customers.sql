-- Whose order each delivery is (issue 19, point 4): GET /deliveries/{orderId} answers only the
-- order's customer (and operators). OrderCompleted, which creates the delivery, does not carry the
-- customer; OrderCreated, before it on the same partition of order-events, does, and the shipping
-- service records it here as it consumes it. A delivery whose order has no row here (one made
-- before this table) belongs to no customer: 404.
CREATE TABLE order_customers (
  order_id    uuid PRIMARY KEY,
  customer_id text NOT NULL CHECK (customer_id <> ''),
  created_at  timestamptz NOT NULL DEFAULT now()
);

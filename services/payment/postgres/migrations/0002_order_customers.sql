-- Whose order each payment is (issue 19, point 4): GET /payments/{orderId} answers only the
-- order's customer (and operators). StockReserved, which creates the payment, does not carry the
-- customer; OrderCreated does, and the payment service records it here as it consumes it. A
-- payment whose order has no row here (one made before this table) belongs to no customer: 404.
CREATE TABLE order_customers (
  order_id    text PRIMARY KEY,
  customer_id text NOT NULL CHECK (customer_id <> ''),
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- A customer may have ORDER_MAX_OPEN_ORDERS orders in progress at once (issue 19, point 4): placing
-- one more counts the customer's PENDING orders, which this index finds without reading the
-- customer's finished ones.
CREATE INDEX orders_customer_pending ON orders (customer_id) WHERE status = 'PENDING';

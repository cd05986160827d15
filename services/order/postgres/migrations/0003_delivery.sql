-- How far each order's delivery has come, as shipping-events tell it (NULL: none). It only
-- moves forward (order.Order.Track), and only a COMPLETED order has one.
ALTER TABLE orders ADD COLUMN delivery text CHECK (delivery IN ('PREPARING', 'SHIPPED', 'DELIVERED'));
ALTER TABLE orders ADD CONSTRAINT orders_delivery_only_when_completed CHECK (delivery IS NULL OR status = 'COMPLETED');

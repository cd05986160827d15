-- The timeline of an order is kept for ORDER_TIMELINE_RETENTION (30 days by default) after it was
-- recorded, then pruned (messaging/postgres.Retention): by then the order ended long ago (the saga
-- deadline is seconds) and its events have left Kafka. BRIN: next to free per insert.
CREATE INDEX order_timeline_recorded_at ON order_timeline USING brin (recorded_at);

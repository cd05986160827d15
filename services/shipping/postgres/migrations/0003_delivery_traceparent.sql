-- The span a delivery's later events (DeliveryShipped, DeliveryDelivered: the carrier's moves)
-- hang below: the OrderCompleted step's that scheduled it, so that a trace's parent links stay
-- intact across the carrier's timer. Empty for a delivery stored before: a span in its trace then.
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS traceparent text NOT NULL DEFAULT '';

-- What the notification service told whom: one row per notification the webhook accepted,
-- written in the transaction that marks its event processed (processed_events, the shared
-- inbox). For operators (GET /notifications?orderId=); the webhook's Idempotency-Key is the key.
CREATE TABLE notifications (
  key        text PRIMARY KEY,            -- <eventId>:<kind>, the Idempotency-Key sent
  seq        bigserial NOT NULL,          -- the order they were recorded in
  event_id   uuid NOT NULL,
  event_type text NOT NULL,
  kind       text NOT NULL CHECK (kind IN ('customer', 'alert')),
  order_id   text NOT NULL,               -- the event's aggregate id
  text       text NOT NULL,
  sent_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX notifications_by_order ON notifications (order_id, seq);
CREATE UNIQUE INDEX notifications_by_seq ON notifications (seq);

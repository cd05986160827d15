-- The order is event-sourced (issue 21; docs/architecture.md "The order is event-sourced").
-- order_events is the event store of the order aggregate AND its outbox: Debezium streams it
-- (migration 0008 adds it to the publication) with the outbox event router, so its first six
-- columns are the outbox's, with the same meaning, and payload is the Kafka value byte for byte.
-- The rest is the store's own: the order, its per-order sequence number (from 1, unique: a
-- second writer of the same seq fails), the event's version and time, and what the order keeps
-- beside the published event (meta: deadline, idempotency key and request hash).
CREATE TABLE order_events (
  id            uuid PRIMARY KEY,
  aggregatetype text NOT NULL CHECK (aggregatetype = 'order'),
  aggregateid   text NOT NULL,
  type          text NOT NULL,
  payload       text NOT NULL,
  traceparent   text NOT NULL,
  order_id      uuid NOT NULL,
  seq           int NOT NULL CHECK (seq >= 1),
  event_version int NOT NULL CHECK (event_version >= 1),
  occurred_at   timestamptz NOT NULL,
  meta          jsonb NOT NULL DEFAULT '{}',
  recorded_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT order_events_order_seq UNIQUE (order_id, seq),
  CHECK (aggregateid = order_id::text)
);

-- Never updated, never deleted, never truncated, by anyone (the owner included); the runtime
-- role may only INSERT and SELECT it (below), so it is refused before the trigger is reached.
CREATE FUNCTION order_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'order_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER order_events_append_only BEFORE UPDATE OR DELETE ON order_events
  FOR EACH ROW EXECUTE FUNCTION order_events_append_only();
CREATE TRIGGER order_events_no_truncate BEFORE TRUNCATE ON order_events
  FOR EACH STATEMENT EXECUTE FUNCTION order_events_append_only();

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'order_svc') THEN
    REVOKE ALL ON order_events FROM order_svc;
    GRANT SELECT, INSERT ON order_events TO order_svc;
  END IF;
END
$$;

-- The projection remembers the seq of the last event it folded (the next one appends seq + 1),
-- and OrderCreated v2's channel.
ALTER TABLE orders ADD COLUMN version int NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN channel text NOT NULL DEFAULT '' CHECK (channel IN ('', 'web', 'app', 'api'));

-- The orders placed before the event store get their events from what the database knows: the
-- projection (orders, order_items) and the ids and times of the timeline's own entries. These
-- events are written before the table joins the publication (0008), so none of them goes to
-- Kafka again. Their payment token is the projection's (none once the order ended).
INSERT INTO order_events (id, aggregatetype, aggregateid, type, payload, traceparent, order_id, seq, event_version,
  occurred_at, meta)
SELECT e.id, 'order', o.id::text, e.type,
  jsonb_build_object('eventId', e.id, 'eventType', e.type, 'eventVersion', 1, 'aggregateType', 'order',
    'aggregateId', o.id::text, 'occurredAt', to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'traceId', o.trace_id, 'idempotencyKey', o.id::text || '#' || e.type || '#1', 'data', e.data)::text,
  '00-' || o.trace_id || '-' || substr(md5(e.id::text), 1, 16) || '-01',
  o.id, e.seq, 1, e.at, e.meta
FROM orders o
CROSS JOIN LATERAL (
  SELECT coalesce((SELECT t.event_id FROM order_timeline t WHERE t.order_id = o.id AND t.source = 'order-service'
      AND t.event_type = 'OrderCreated' LIMIT 1), gen_random_uuid()) AS id,
    'OrderCreated' AS type, 1 AS seq, o.created_at AS at,
    jsonb_build_object('orderId', o.id::text, 'customerId', o.customer_id,
      'items', (SELECT jsonb_agg(jsonb_build_object('sku', i.sku, 'qty', i.qty, 'unitPrice', i.unit_price) ORDER BY i.line)
        FROM order_items i WHERE i.order_id = o.id),
      'amount', o.amount, 'currency', o.currency, 'paymentToken', o.payment_token) AS data,
    jsonb_strip_nulls(jsonb_build_object('deadlineAt', to_char(o.deadline_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
      'idempotencyKey', o.idempotency_key, 'requestHash', nullif(o.request_hash, ''))) AS meta
  UNION ALL
  SELECT coalesce(t.event_id, gen_random_uuid()),
    CASE o.status WHEN 'COMPLETED' THEN 'OrderCompleted' ELSE 'OrderCanceled' END, 2,
    CASE WHEN o.delivery IS NULL THEN o.updated_at ELSE coalesce(t.occurred_at, o.updated_at) END,
    CASE o.status
      WHEN 'COMPLETED' THEN jsonb_build_object('orderId', o.id::text,
        'items', (SELECT jsonb_agg(jsonb_build_object('sku', i.sku, 'qty', i.qty, 'unitPrice', i.unit_price) ORDER BY i.line)
          FROM order_items i WHERE i.order_id = o.id), 'amount', o.amount, 'currency', o.currency)
      ELSE jsonb_build_object('orderId', o.id::text, 'reason', o.reason,
        'items', (SELECT jsonb_agg(jsonb_build_object('sku', i.sku, 'qty', i.qty, 'unitPrice', i.unit_price) ORDER BY i.line)
          FROM order_items i WHERE i.order_id = o.id))
    END,
    '{}'::jsonb
  FROM (SELECT 1) one
  LEFT JOIN LATERAL (SELECT t.event_id, t.occurred_at FROM order_timeline t WHERE t.order_id = o.id
    AND t.source = 'order-service' AND t.event_type IN ('OrderCompleted', 'OrderCanceled') ORDER BY t.seq LIMIT 1) t ON true
  WHERE o.status <> 'PENDING'
) e;

UPDATE orders o SET version = CASE WHEN o.status = 'PENDING' THEN 1 ELSE 2 END;

-- A delivered order's last update is when it recorded the delivery event that moved it last (the
-- fold's rule); before, it was the step's clock, a moment earlier.
UPDATE orders o SET updated_at = t.recorded_at
FROM (SELECT order_id, event_type, min(recorded_at) AS recorded_at FROM order_timeline
      WHERE event_type IN ('DeliveryScheduled', 'DeliveryShipped', 'DeliveryDelivered') GROUP BY order_id, event_type) t
WHERE t.order_id = o.id AND o.delivery IS NOT NULL
  AND t.event_type = CASE o.delivery WHEN 'PREPARING' THEN 'DeliveryScheduled' WHEN 'SHIPPED' THEN 'DeliveryShipped'
    ELSE 'DeliveryDelivered' END;

-- The fold reads the delivery facts of an order from its timeline.
CREATE INDEX order_timeline_delivery ON order_timeline (order_id, seq)
  WHERE event_type IN ('DeliveryScheduled', 'DeliveryShipped', 'DeliveryDelivered');

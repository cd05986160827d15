-- The shipping service's own tables. The messaging tables (outbox, inbox, dead letters) come
-- from services/messaging and are migrated first.

-- One delivery per completed order (invariant 5, docs/architecture.md "Shipping"). The order id
-- is the key: the same OrderCompleted under a new event id finds the order's delivery and
-- creates no second one (INSERT ... ON CONFLICT DO NOTHING), however the two race.
CREATE TABLE deliveries (
  order_id    uuid PRIMARY KEY,
  delivery_id uuid NOT NULL UNIQUE,
  status      text NOT NULL CHECK (status IN ('PREPARING', 'SHIPPED', 'DELIVERED')),
  items       jsonb NOT NULL CHECK (jsonb_typeof(items) = 'array' AND jsonb_array_length(items) BETWEEN 1 AND 50),
  -- The trace of the OrderCompleted that created the delivery: its every event is emitted in it.
  trace_id    text NOT NULL CHECK (trace_id ~ '^[0-9a-f]{32}$'),
  created_at  timestamptz NOT NULL,
  -- When the delivery reached its status; the carrier moves it once ADVANCE_AFTER has passed.
  updated_at  timestamptz NOT NULL
);

-- What the carrier looks for: deliveries still on their way, the longest waiting first.
CREATE INDEX deliveries_in_transit ON deliveries (updated_at) WHERE status <> 'DELIVERED';

-- A delivery only moves forward, one step at a time, and keeps its order, id and items. The
-- domain decides so (shipping.Delivery.Advance); this makes a bug that would do otherwise fail
-- its transaction instead of breaking the invariant.
CREATE FUNCTION deliveries_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  steps CONSTANT text[] := ARRAY['PREPARING', 'SHIPPED', 'DELIVERED'];
BEGIN
  IF NEW.order_id <> OLD.order_id OR NEW.delivery_id <> OLD.delivery_id OR NEW.items <> OLD.items
     OR NEW.trace_id <> OLD.trace_id OR NEW.created_at <> OLD.created_at THEN
    RAISE EXCEPTION 'delivery of order %: only its status and update time change', OLD.order_id
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status <> OLD.status AND array_position(steps, NEW.status) <> array_position(steps, OLD.status) + 1 THEN
    RAISE EXCEPTION 'delivery of order % cannot go from % to %', OLD.order_id, OLD.status, NEW.status
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER deliveries_forward_only BEFORE UPDATE ON deliveries
  FOR EACH ROW EXECUTE FUNCTION deliveries_forward_only();


-- Debezium streams the event store (connectors/order-outbox.json): it joins the publication, in a
-- migration of its own, after 0007 wrote the events of the orders placed before (which must not
-- go to Kafka again). The order service's outbox stays in the publication for its dead letters.
ALTER PUBLICATION dbz_outbox ADD TABLE order_events;
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'debezium') THEN
    GRANT SELECT ON order_events TO debezium;
  END IF;
END
$$;

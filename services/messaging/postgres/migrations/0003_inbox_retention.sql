-- The inbox keeps an event id only as long as the event can come again: Kafka keeps the topics
-- for log.retention.hours (168 h), so an id older than that plus a margin cannot be redelivered
-- (postgres.Retention prunes them). A BRIN index costs next to nothing per insert on this
-- append-only, time-ordered column and makes the prune a range scan.
CREATE INDEX processed_events_processed_at ON processed_events USING brin (processed_at);

package pgtest

import (
	"database/sql"
	"testing"

	"outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/schemas"
)

// CaptureOutbox makes every row inserted into db's outbox visible to the test.
// postgres.InsertOutbox deletes its row in the same transaction (only the WAL keeps
// it, for Debezium), so a trigger copies each insert into outbox_seen, numbered in
// insert order (column seq). db must be migrated (postgres.MigrateMessaging) first.
func CaptureOutbox(tb testing.TB, db *sql.DB) {
	tb.Helper()
	_, err := db.Exec(`
		CREATE TABLE outbox_seen (seq bigserial PRIMARY KEY, LIKE outbox);
		CREATE FUNCTION outbox_seen() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO outbox_seen (id, aggregatetype, aggregateid, type, payload, traceparent, created_at)
			VALUES (NEW.id, NEW.aggregatetype, NEW.aggregateid, NEW.type, NEW.payload, NEW.traceparent, NEW.created_at);
			RETURN NEW;
		END $$;
		CREATE TRIGGER outbox_seen AFTER INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION outbox_seen();`)
	if err != nil {
		tb.Fatalf("capture outbox: %v", err)
	}
}

// MustOutbox returns an outbox writer that checks events against the project's schemas, as the
// services' is.
func MustOutbox(tb testing.TB) *postgres.Outbox {
	tb.Helper()
	v, err := schemas.New()
	if err != nil {
		tb.Fatalf("load schemas: %v", err)
	}
	return postgres.NewOutbox(v)
}

package pgtest

import (
	"database/sql"
	"encoding/json"
	"testing"

	"outboxsaga.dev/messaging"
)

// CaptureOutbox makes every row inserted into db's outbox visible to the test.
// postgres.InsertOutbox deletes its row in the same transaction (only the WAL keeps
// it, for Debezium), so a trigger copies each insert into outbox_seen, numbered in
// insert order. db must be migrated (postgres.MigrateMessaging) first.
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

// OutboxRow is one captured outbox insert: its columns, and the payload decoded.
type OutboxRow struct {
	ID            string
	AggregateType string
	AggregateID   string
	Type          string
	Traceparent   string
	Payload       []byte
	Envelope      messaging.Envelope
}

// CapturedOutbox returns the rows CaptureOutbox has seen, in insert order.
func CapturedOutbox(tb testing.TB, db *sql.DB) []OutboxRow {
	tb.Helper()
	rows, err := db.Query(`SELECT id, aggregatetype, aggregateid, type, traceparent, payload FROM outbox_seen ORDER BY seq`)
	if err != nil {
		tb.Fatalf("read outbox_seen: %v", err)
	}
	defer rows.Close()
	var out []OutboxRow
	for rows.Next() {
		var r OutboxRow
		if err := rows.Scan(&r.ID, &r.AggregateType, &r.AggregateID, &r.Type, &r.Traceparent, &r.Payload); err != nil {
			tb.Fatal(err)
		}
		if err := json.Unmarshal(r.Payload, &r.Envelope); err != nil {
			tb.Fatalf("outbox payload of %s is not an envelope: %v", r.ID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

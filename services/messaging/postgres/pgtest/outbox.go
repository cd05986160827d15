package pgtest

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"testing"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/schemas"
)

// CaptureOutbox makes every row inserted into db's outbox visible to the test.
// postgres.InsertOutbox deletes its row in the same transaction (only the WAL keeps
// it, for Debezium), so a trigger copies each insert into outbox_seen, numbered in
// insert order (column seq). db must be migrated (postgres.MigrateMessaging) first.
func CaptureOutbox(tb testing.TB, db *sql.DB) {
	tb.Helper()
	if _, err := db.Exec(`CREATE TABLE outbox_seen (seq bigserial PRIMARY KEY, LIKE outbox)`); err != nil {
		tb.Fatalf("capture outbox: %v", err)
	}
	CaptureInserts(tb, db, "outbox", "created_at")
}

// CaptureInserts copies every row inserted into table (one with the outbox's columns, its time
// in column at) into the captured outbox (outbox_seen, which CaptureOutbox made), in insert
// order, so that Emitted lists them: the order service's event store (order_events, at
// recorded_at) beside its outbox.
func CaptureInserts(tb testing.TB, db *sql.DB, table, at string) {
	tb.Helper()
	_, err := db.Exec(fmt.Sprintf(`
		CREATE FUNCTION %[1]s_seen() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO outbox_seen (id, aggregatetype, aggregateid, type, payload, traceparent, created_at)
			VALUES (NEW.id, NEW.aggregatetype, NEW.aggregateid, NEW.type, NEW.payload, NEW.traceparent, NEW.%[2]s);
			RETURN NEW;
		END $$;
		CREATE TRIGGER %[1]s_seen AFTER INSERT ON %[1]s FOR EACH ROW EXECUTE FUNCTION %[1]s_seen();`, table, at))
	if err != nil {
		tb.Fatalf("capture inserts into %s: %v", table, err)
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

// Event is one event written to a captured outbox (CaptureOutbox): its envelope, the outbox
// row's traceparent and the payload exactly as written.
type Event struct {
	messaging.Envelope
	Traceparent messaging.Traceparent
	Payload     []byte
}

// Emitted returns the events written to db's outbox for aggregateID ("" for all), in insert order.
// It fails tb unless each one matches its schema, its row agrees with its envelope (id, aggregate
// type and id, type) and its traceparent is in its trace.
func Emitted(tb testing.TB, db *sql.DB, aggregateID string) []Event {
	tb.Helper()
	v, err := schemas.New()
	if err != nil {
		tb.Fatalf("load schemas: %v", err)
	}
	// Test kit only: reads the trigger's copy (outbox_seen), never the outbox, which no service
	// code reads or updates (Debezium alone reads it, from the WAL).
	rows, err := db.Query(`SELECT id, aggregatetype, aggregateid, type, payload, traceparent FROM outbox_seen
		WHERE $1 = '' OR aggregateid = $1 ORDER BY seq`, aggregateID)
	if err != nil {
		tb.Fatalf("read the captured outbox: %v", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var (
			e                           Event
			id, aggType, aggID, typ, tp string
		)
		if err := rows.Scan(&id, &aggType, &aggID, &typ, &e.Payload, &tp); err != nil {
			tb.Fatal(err)
		}
		if err := json.Unmarshal(e.Payload, &e.Envelope); err != nil {
			tb.Fatalf("outbox payload of %s %s is not an envelope: %v", typ, id, err)
		}
		if err := v.Validate(e.EventType, e.EventVersion, e.Payload); err != nil {
			tb.Errorf("emitted %s does not match its schema: %v\n%s", typ, err, e.Payload)
		}
		if id != e.EventID || aggType != e.AggregateType || aggID != e.AggregateID || typ != e.EventType {
			tb.Errorf("outbox row (%s, %s, %s, %s) does not match its envelope %+v", id, aggType, aggID, typ, e.Envelope)
		}
		if e.Traceparent, err = messaging.ParseTraceparent(tp); err != nil || e.Traceparent.TraceID() != e.TraceID {
			tb.Errorf("outbox traceparent %q of %s is not in trace %s", tp, typ, e.TraceID)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// Types returns the event types of events, in order.
func Types(events []Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.EventType
	}
	return out
}

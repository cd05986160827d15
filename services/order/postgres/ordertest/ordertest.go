// Package ordertest is the order service's test kit: it makes the events the order appends to
// its event store visible to messaging/postgres/pgtest.Emitted, as every other service's outbox
// rows are.
package ordertest

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/google/uuid"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/order"
	"outboxsaga.dev/order/postgres"
)

// CaptureEvents copies every row appended to db's event store (order_events) into the captured
// outbox (outbox_seen, which pgtest.CaptureOutbox must have made), in insert order, so that
// pgtest.Emitted lists the order's own events beside its dead letters. db must be migrated.
func CaptureEvents(tb testing.TB, db *sql.DB) {
	tb.Helper()
	_, err := db.Exec(`
		CREATE FUNCTION order_events_seen() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO outbox_seen (id, aggregatetype, aggregateid, type, payload, traceparent, created_at)
			VALUES (NEW.id, NEW.aggregatetype, NEW.aggregateid, NEW.type, NEW.payload, NEW.traceparent, NEW.recorded_at);
			RETURN NEW;
		END $$;
		CREATE TRIGGER order_events_seen AFTER INSERT ON order_events FOR EACH ROW EXECUTE FUNCTION order_events_seen();`)
	if err != nil {
		tb.Fatalf("capture events: %v", err)
	}
}

// Change runs decide on order id in tx as the saga steps do: the order locked, decide on a copy,
// the event it returns (if ok) decided at at, appended to the event store and folded into the
// projection. It returns the order as saved.
func Change(ctx context.Context, tx *sql.Tx, orders *postgres.Orders, events *postgres.Events, id uuid.UUID, at time.Time,
	decide func(*order.Order) (messaging.Event, bool)) (order.Order, error) {
	before, err := orders.Lock(ctx, tx, id)
	if err != nil {
		return order.Order{}, err
	}
	scratch := before
	e, ok := decide(&scratch)
	if !ok {
		return before, nil
	}
	d, err := events.Decide(before, messaging.NewTraceparent(), e, order.EventVersion, at, order.Meta{})
	if err != nil {
		return order.Order{}, err
	}
	if err := events.Append(ctx, tx, d); err != nil {
		return order.Order{}, err
	}
	return d.State, orders.Save(ctx, tx, before, d.State)
}

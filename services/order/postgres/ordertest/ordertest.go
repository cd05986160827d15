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
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/order"
	"outboxsaga.dev/order/postgres"
)

// CaptureEvents copies every row appended to db's event store (order_events) into the captured
// outbox (outbox_seen, which pgtest.CaptureOutbox must have made), in insert order, so that
// pgtest.Emitted lists the order's own events beside its dead letters. db must be migrated.
func CaptureEvents(tb testing.TB, db *sql.DB) {
	tb.Helper()
	pgtest.CaptureInserts(tb, db, "order_events", "recorded_at")
}

// NewOrder returns the order the tests place, PENDING at now (to the microsecond, as Postgres
// keeps it) with the given deadline: customer U1, KRW, A100 × 2 at 15000 and B200 × 1 at 9000,
// and the OrderCreated that starts its saga.
func NewOrder(tb testing.TB, now time.Time, deadline time.Duration) (order.Order, messaging.Event) {
	tb.Helper()
	o, e, err := order.New(uuid.New(), order.Draft{
		CustomerID: "U1", Currency: "KRW", PaymentToken: "tok_ok",
		Lines: []order.Line{{SKU: "A100", Qty: 2}, {SKU: "B200", Qty: 1}},
	}, map[string]order.Price{"A100": {SKU: "A100", UnitPrice: 15000, Currency: "KRW"}, "B200": {SKU: "B200", UnitPrice: 9000, Currency: "KRW"}},
		now.UTC().Truncate(time.Microsecond), deadline)
	if err != nil {
		tb.Fatal(err)
	}
	return o, e
}

// Place stores NewOrder(now, deadline) as placing an order does, in one transaction: its
// OrderCreated decided, the projection inserted, the event appended and recorded in the timeline.
// It returns the order as stored.
func Place(tb testing.TB, db *sql.DB, orders *postgres.Orders, events *postgres.Events, now time.Time, deadline time.Duration) order.Order {
	tb.Helper()
	o, e := NewOrder(tb, now, deadline)
	err := msgpg.WithTx(context.Background(), db, func(tx *sql.Tx) error {
		d, err := order.Decide(order.Order{}, messaging.NewTraceparent(), e, order.CreatedVersion, o.CreatedAt,
			order.Meta{DeadlineAt: o.DeadlineAt, RequestHash: "h"}, events.Upcaster())
		if err != nil {
			return err
		}
		o = d.State
		if _, err := orders.Insert(context.Background(), tx, o, order.Idempotency{RequestHash: "h"}); err != nil {
			return err
		}
		if err := events.Append(context.Background(), tx, d); err != nil {
			return err
		}
		return orders.Record(context.Background(), tx, o.ID, d.Entry())
	})
	if err != nil {
		tb.Fatalf("place order: %v", err)
	}
	return o
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
	d, err := order.Decide(before, messaging.NewTraceparent(), e, order.EventVersion, at, order.Meta{}, events.Upcaster())
	if err != nil {
		return order.Order{}, err
	}
	if err := events.Append(ctx, tx, d); err != nil {
		return order.Order{}, err
	}
	return d.State, orders.Save(ctx, tx, before, d.State)
}

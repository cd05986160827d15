package postgres_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/upcast"
	"outboxsaga.dev/order"
	"outboxsaga.dev/order/postgres"
	"outboxsaga.dev/order/postgres/ordertest"
)

// store is a migrated database with its repositories.
type store struct {
	t      *testing.T
	db     *sql.DB
	orders *postgres.Orders
	events *postgres.Events
}

func newStore(t *testing.T) *store {
	t.Helper()
	db, _ := openDB(t)
	return &store{t: t, db: db, orders: postgres.NewOrders(db), events: postgres.NewEvents(db, pgtest.MustOutbox(t), nil)}
}

// place places an order at at as POST /orders does (ordertest.Place).
func (s *store) place(at time.Time) order.Order {
	s.t.Helper()
	return ordertest.Place(s.t, s.db, s.orders, s.events, at, 30*time.Second)
}

// change runs decide on order id in its own transaction (ordertest.Change).
func (s *store) change(id uuid.UUID, at time.Time, decide func(*order.Order) (messaging.Event, bool)) order.Order {
	s.t.Helper()
	var o order.Order
	err := msgpg.WithTx(context.Background(), s.db, func(tx *sql.Tx) (err error) {
		o, err = ordertest.Change(context.Background(), tx, s.orders, s.events, id, at, decide)
		return err
	})
	if err != nil {
		s.t.Fatalf("change order %s: %v", id, err)
	}
	return o
}

// track records a delivery event for order id at at, as the saga step does: the timeline entry
// at that time and the projection folded.
func (s *store) track(id uuid.UUID, eventType string, at time.Time) {
	s.t.Helper()
	ctx := context.Background()
	at = at.UTC().Truncate(time.Microsecond)
	err := msgpg.WithTx(ctx, s.db, func(tx *sql.Tx) error {
		before, err := s.orders.Lock(ctx, tx, id)
		if err != nil {
			return err
		}
		after := before
		eventID := uuid.NewString()
		if err := after.Apply(order.Recorded{EventID: eventID, EventType: eventType, OccurredAt: at}, nil); err != nil {
			return err
		}
		if err := s.orders.Save(ctx, tx, before, after); err != nil {
			return err
		}
		return s.orders.Record(ctx, tx, id, order.TimelineEntry{EventID: eventID, EventType: eventType, Source: messaging.TopicShipping,
			OccurredAt: at, RecordedAt: at, Data: json.RawMessage(`{"orderId":"` + id.String() + `"}`)})
	})
	if err != nil {
		s.t.Fatalf("track %s: %v", eventType, err)
	}
}

// TestEventStoreIsAppendOnly: nobody may update, delete or truncate order_events (a trigger, the
// owner included), and the runtime role order_svc may only insert and select it (privileges).
func TestEventStoreIsAppendOnly(t *testing.T) {
	s := newStore(t)
	o := s.place(time.Now())
	for _, q := range []string{
		`UPDATE order_events SET type = 'OrderCompleted' WHERE order_id = $1`,
		`DELETE FROM order_events WHERE order_id = $1`,
		`TRUNCATE order_events`,
	} {
		args := []any{o.ID}
		if strings.HasPrefix(q, "TRUNCATE") {
			args = nil
		}
		_, err := s.db.Exec(q, args...)
		var pqErr *pq.Error
		if !errors.As(err, &pqErr) || pqErr.Code != "42501" {
			t.Errorf("%s as the owner: error = %v, want 42501 (refused)", q, err)
		}
	}

	var exists bool
	if err := s.db.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'order_svc')`).Scan(&exists); err != nil || !exists {
		t.Skip("no role order_svc in this cluster (make up makes it)")
	}
	tests := []struct {
		query   string
		allowed bool
	}{
		{`SELECT count(*) FROM order_events`, true},
		{`INSERT INTO order_events (id, aggregatetype, aggregateid, type, payload, traceparent, order_id, seq, event_version, occurred_at)
			VALUES (gen_random_uuid(), 'order', $1::text, 'OrderCanceled', '{}', '', $1::text::uuid, 9, 1, now())`, true},
		{`UPDATE order_events SET payload = '{}' WHERE order_id = $1::uuid`, false},
		{`DELETE FROM order_events WHERE order_id = $1::uuid`, false},
		{`TRUNCATE order_events`, false},
	}
	for _, tt := range tests {
		t.Run(strings.Fields(tt.query)[0], func(t *testing.T) {
			ctx := context.Background()
			conn, err := s.db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			if _, err := tx.Exec(`SET LOCAL ROLE order_svc`); err != nil {
				t.Fatal(err)
			}
			var args []any
			if strings.Contains(tt.query, "$1") {
				args = []any{o.ID.String()}
			}
			_, err = tx.Exec(tt.query, args...)
			var pqErr *pq.Error
			switch {
			case tt.allowed && err != nil:
				t.Errorf("as order_svc: %v, want allowed", err)
			case !tt.allowed && (!errors.As(err, &pqErr) || pqErr.Code != "42501" || !strings.Contains(pqErr.Message, "permission denied")):
				t.Errorf("as order_svc: error = %v, want permission denied (42501)", err)
			}
		})
	}
}

// TestConcurrentAppendConflicts: two writers decide the order's next event from the same state;
// the first commits, the second's append fails with a conflict (409 concurrent_write) and its
// transaction rolls back, leaving the first's event alone.
func TestConcurrentAppendConflicts(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	o := s.place(time.Now())
	first, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Rollback()
	second, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Rollback()

	scratch := o
	completed, _ := scratch.Complete(time.Now())
	scratch = o
	canceled, _ := scratch.Cancel(order.ReasonPaymentFailed, time.Now())
	d1, err := order.Decide(o, messaging.NewTraceparent(), completed, order.EventVersion, time.Now(), order.Meta{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := order.Decide(o, messaging.NewTraceparent(), canceled, order.EventVersion, time.Now(), order.Meta{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.events.Append(ctx, first, d1); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.events.Append(ctx, second, d2) }() // waits for first on the unique index
	time.Sleep(100 * time.Millisecond)
	if err := first.Commit(); err != nil {
		t.Fatal(err)
	}
	err = <-done
	if fault.Code(err) != fault.Conflict || fault.Reason(err) != order.CodeConcurrentWrite {
		t.Fatalf("second append: error = %v, want a conflict %s", err, order.CodeConcurrentWrite)
	}
	h, err := s.events.History(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[1].EventType != order.EventOrderCompleted {
		t.Fatalf("history = %+v, want OrderCreated, OrderCompleted", h)
	}
}

// TestHistoryAndAsOf: the history lists the order's own events in seq order with tokens
// redacted; as of any instant the fold answers the state then (404 before the order existed);
// as of now it equals the projection.
func TestHistoryAndAsOf(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	t0 := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	o := s.place(t0)
	s.change(o.ID, t0.Add(time.Second), func(o *order.Order) (messaging.Event, bool) { return o.Complete(t0.Add(time.Second)) })
	s.track(o.ID, "DeliveryScheduled", t0.Add(2*time.Second))
	s.track(o.ID, "DeliveryShipped", t0.Add(3*time.Second))

	h, err := s.events.History(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].Seq != 1 || h[0].EventType != order.EventOrderCreated || h[1].Seq != 2 || h[1].EventType != order.EventOrderCompleted ||
		h[0].EventVersion != order.CreatedVersion {
		t.Fatalf("history = %+v", h)
	}
	if strings.Contains(string(h[0].Data), "tok_ok") || !strings.Contains(string(h[0].Data), messaging.Redacted) {
		t.Errorf("history data %s shows the payment token", h[0].Data)
	}
	wantNotFound(t, "History(unknown)", errOf(s.events.History(ctx, uuid.New())))

	live, err := s.orders.Get(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		at           time.Time
		wantStatus   order.Status
		wantDelivery order.Delivery
		wantNotFound bool
	}{
		{"before it existed", t0.Add(-time.Microsecond), "", "", true},
		{"placed", t0, order.StatusPending, "", false},
		{"completed", t0.Add(1500 * time.Millisecond), order.StatusCompleted, order.DeliveryNone, false},
		{"preparing", t0.Add(2 * time.Second), order.StatusCompleted, order.DeliveryPreparing, false},
		{"shipped", t0.Add(time.Hour), order.StatusCompleted, order.DeliveryShipped, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.events.AsOf(ctx, o.ID, tt.at)
			if tt.wantNotFound {
				if fault.Code(err) != fault.NotFound {
					t.Fatalf("AsOf = %+v, %v; want NotFound", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.wantStatus || got.Delivery != tt.wantDelivery {
				t.Fatalf("AsOf = %s/%s, want %s/%s", got.Status, got.Delivery, tt.wantStatus, tt.wantDelivery)
			}
			if tt.name == "placed" && got.PaymentToken != "tok_ok" {
				t.Errorf("a pending order as of then keeps its token, got %q", got.PaymentToken)
			}
			if tt.name == "shipped" && !reflect.DeepEqual(got, live) {
				t.Errorf("as of now:\n %+v\nprojection:\n %+v", got, live)
			}
		})
	}
}

// TestRebuild: a rebuild of projections written by the live path finds no difference; a row
// corrupted by hand (an order's status and an item's qty, a row deleted, a row forged) is found,
// exactly those, and with swap repaired; a second rebuild then finds none.
func TestRebuild(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var ids []uuid.UUID
	for i := range 6 {
		o := s.place(time.Now().Add(-time.Duration(i) * time.Minute))
		ids = append(ids, o.ID)
	}
	s.change(ids[0], time.Now(), func(o *order.Order) (messaging.Event, bool) { return o.Complete(time.Now()) })
	s.track(ids[0], "DeliveryScheduled", time.Now())
	s.change(ids[1], time.Now(), func(o *order.Order) (messaging.Event, bool) { return o.Cancel(order.ReasonOutOfStock, time.Now()) })

	rep, err := postgres.Rebuild(ctx, s.db, nil, false)
	if err != nil || rep.Orders != 6 || len(rep.Differences) != 0 {
		t.Fatalf("Rebuild = %+v, %v; want 6 orders, no difference", rep, err)
	}

	forged := newOrder(t, time.Now(), time.Minute)
	insert(t, s.db, s.orders, forged, order.Idempotency{RequestHash: "h"})
	for _, q := range []struct {
		sql string
		id  uuid.UUID
	}{
		{`UPDATE orders SET status = 'COMPLETED', delivery = 'DELIVERED' WHERE id = $1`, ids[0]},
		{`UPDATE order_items SET qty = qty + 1 WHERE order_id = $1 AND line = 0`, ids[2]},
		{`DELETE FROM order_items WHERE order_id = $1 AND line = 1`, ids[3]},
	} {
		if _, err := s.db.Exec(q.sql, q.id); err != nil {
			t.Fatal(err)
		}
	}
	want := []uuid.UUID{ids[0], ids[2], ids[3], forged.ID}
	sortIDs(want)
	before := snapshot(t, s.db, ids[4])

	rep, err = postgres.Rebuild(ctx, s.db, nil, false)
	if err != nil || rep.Orders != 6 || !reflect.DeepEqual(rep.Differences, want) || rep.Swapped {
		t.Fatalf("Rebuild = %+v, %v; want 6 orders, differences %v, nothing swapped", rep, err, want)
	}
	if again, _ := postgres.Rebuild(ctx, s.db, nil, false); len(again.Differences) != 4 {
		t.Fatalf("a rebuild without swap repaired something: %+v", again)
	}

	rep, err = postgres.Rebuild(ctx, s.db, nil, true)
	if err != nil || !reflect.DeepEqual(rep.Differences, want) || !rep.Swapped {
		t.Fatalf("Rebuild(swap) = %+v, %v; want differences %v, swapped", rep, err, want)
	}
	rep, err = postgres.Rebuild(ctx, s.db, nil, false)
	if err != nil || rep.Orders != 6 || len(rep.Differences) != 0 {
		t.Fatalf("Rebuild after the swap = %+v, %v; want no difference", rep, err)
	}
	if got, err := s.orders.Get(ctx, ids[0]); err != nil || got.Status != order.StatusCompleted || got.Delivery != order.DeliveryPreparing {
		t.Errorf("repaired order = %+v, %v", got, err)
	}
	wantNotFound(t, "Get(the forged order)", errOf(s.orders.Get(ctx, forged.ID)))
	if after := snapshot(t, s.db, ids[4]); after != before {
		t.Errorf("an order that did not differ was rewritten: %s, was %s", after, before)
	}
}

// snapshot returns order id's row and items as text, with its physical row id (ctid): a
// rewritten row gets a new one.
func snapshot(t *testing.T, db *sql.DB, id uuid.UUID) string {
	t.Helper()
	var s string
	err := db.QueryRow(`SELECT o.ctid::text || row_to_json(o)::text || (SELECT string_agg(i.ctid::text, ',') FROM order_items i WHERE i.order_id = o.id)
		FROM orders o WHERE o.id = $1`, id).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sortIDs(ids []uuid.UUID) {
	for i := range ids {
		for j := i + 1; j < len(ids); j++ {
			if ids[j].String() < ids[i].String() {
				ids[i], ids[j] = ids[j], ids[i]
			}
		}
	}
}

// TestBackfill: orders placed before the event store (migrations up to 0006) get their events
// from the projection and the timeline when 0007 runs, and a rebuild of them finds no
// difference: a pending one, a canceled one, and a completed one whose delivery shipped.
func TestBackfill(t *testing.T) {
	db := pgtest.MustOpenTestDB(t)
	ctx := context.Background()
	old := fstest.MapFS{}
	names, err := fs.Glob(postgres.Migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		base := strings.TrimPrefix(n, "migrations/")
		if base < "0007" {
			b, _ := fs.ReadFile(postgres.Migrations, n)
			old["migrations/"+base] = &fstest.MapFile{Data: b}
		}
	}
	if err := msgpg.MigrateService(ctx, db, "order", old); err != nil {
		t.Fatalf("migrate to 0006: %v", err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	pending, canceled, shipped := uuid.New(), uuid.New(), uuid.New()
	_, err = db.Exec(`
		INSERT INTO orders (id, customer_id, status, reason, currency, amount, payment_token, trace_id, idempotency_key,
			request_hash, created_at, updated_at, deadline_at, delivery) VALUES
		($1, 'U1', 'PENDING', '', 'KRW', 30000, 'tok_ok', '4bf92f3577b34da6a3ce929d0e0e4736', 'k1', 'h1', $4, $4, $4::timestamptz + interval '30s', NULL),
		($2, 'U1', 'CANCELED', 'OUT_OF_STOCK', 'KRW', 30000, '', '4bf92f3577b34da6a3ce929d0e0e4737', NULL, 'h2', $4, $4::timestamptz + interval '1s', $4::timestamptz + interval '30s', NULL),
		($3, 'U2', 'COMPLETED', '', 'KRW', 30000, '', '4bf92f3577b34da6a3ce929d0e0e4738', NULL, 'h3', $4, $4::timestamptz + interval '5s', $4::timestamptz + interval '30s', 'SHIPPED')`,
		pending, canceled, shipped, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO order_items (order_id, line, sku, qty, unit_price) SELECT id, 0, 'A100', 2, 15000 FROM orders`); err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`INSERT INTO order_timeline (event_id, order_id, event_type, source, occurred_at, recorded_at, data) VALUES
		(gen_random_uuid(), $1, 'OrderCreated', 'order-service', $2, $2, '{}'),
		(gen_random_uuid(), $1, 'OrderCompleted', 'order-service', $2::timestamptz + interval '1s', $2::timestamptz + interval '1s', '{}'),
		(gen_random_uuid(), $1, 'DeliveryScheduled', 'shipping-events', $2::timestamptz + interval '2s', $2::timestamptz + interval '2s', '{}'),
		(gen_random_uuid(), $1, 'DeliveryShipped', 'shipping-events', $2::timestamptz + interval '4s', $2::timestamptz + interval '4001ms', '{}')`,
		shipped, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := msgpg.MigrateService(ctx, db, "order", postgres.Migrations); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	// The backfilled events are OrderCreated v1: the fold reads them through the upcaster.
	rep, err := postgres.Rebuild(ctx, db, upcast.New(), false)
	if err != nil || rep.Orders != 3 || len(rep.Differences) != 0 {
		t.Fatalf("Rebuild = %+v, %v; want 3 orders, no difference", rep, err)
	}
	events := postgres.NewEvents(db, pgtest.MustOutbox(t), upcast.New())
	h, err := events.History(ctx, shipped)
	if err == nil && (h[0].EventVersion != 1 || h[0].EventType != order.EventOrderCreated) {
		t.Errorf("the history shows the stored version: got %+v, want OrderCreated v1", h[0])
	}
	if err != nil || len(h) != 2 || h[1].EventType != order.EventOrderCompleted || !h[1].OccurredAt.Equal(now.Add(time.Second)) {
		t.Fatalf("history of the shipped order = %+v, %v", h, err)
	}
	got, err := events.AsOf(ctx, shipped, now.Add(3*time.Second))
	if err != nil || got.Status != order.StatusCompleted || got.Delivery != order.DeliveryPreparing {
		t.Fatalf("shipped order as of 3s = %+v, %v; want COMPLETED, PREPARING", got, err)
	}
	if n := pgtest.Count(t, db, `SELECT count(*) FROM order_events`); n != 5 {
		t.Errorf("%d events backfilled, want 5", n)
	}
}

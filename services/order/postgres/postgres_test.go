package postgres_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/order"
	"outboxsaga.dev/order/postgres"
	"outboxsaga.dev/order/postgres/ordertest"
)

// openDB returns a fresh, migrated database and its connection string.
func openDB(t *testing.T) (*sql.DB, string) {
	t.Helper()
	db, url := pgtest.MustOpenTestDBURL(t)
	if err := msgpg.MigrateService(context.Background(), db, "order", postgres.Migrations); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db, url
}

// errOf is the error of a call that returns a value and an error.
func errOf[T any](_ T, err error) error { return err }

// wantNotFound fails t unless err, what call returned, is a fault.NotFound.
func wantNotFound(t *testing.T, call string, err error) {
	t.Helper()
	if fault.Code(err) != fault.NotFound {
		t.Fatalf("%s error = %v, want %s", call, err, fault.NotFound)
	}
}

// newOrder returns a valid pending order placed at now (to the microsecond, as Postgres keeps it).
func newOrder(t *testing.T, now time.Time, deadline time.Duration) order.Order {
	t.Helper()
	o, _ := ordertest.NewOrder(t, now, deadline)
	o.TraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	return o
}

// withOrder opens a database of the test's own with a new pending order in it.
func withOrder(t *testing.T) (*sql.DB, *postgres.Orders, order.Order) {
	t.Helper()
	db, _ := openDB(t)
	orders := postgres.NewOrders(db)
	o := newOrder(t, time.Now(), time.Minute)
	insert(t, db, orders, o, order.Idempotency{RequestHash: "h"})
	return db, orders, o
}

func insert(t *testing.T, db *sql.DB, orders *postgres.Orders, o order.Order, idem order.Idempotency) bool {
	t.Helper()
	var inserted bool
	err := msgpg.WithTx(context.Background(), db, func(tx *sql.Tx) (err error) {
		inserted, err = orders.Insert(context.Background(), tx, o, idem)
		return err
	})
	if err != nil {
		t.Fatalf("Insert: %v", err)
	}
	return inserted
}

func TestMigrateTwice(t *testing.T) {
	db := pgtest.MustOpenTestDB(t)
	for range 2 {
		if err := msgpg.MigrateService(context.Background(), db, "order", postgres.Migrations); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	if n := pgtest.Count(t, db, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
		AND tablename IN ('orders', 'order_items', 'order_timeline', 'outbox', 'processed_events', 'dead_letters')`); n != 6 {
		t.Fatalf("%d of 6 tables exist", n)
	}
}

func TestInsertAndGet(t *testing.T) {
	db, _ := openDB(t)
	orders := postgres.NewOrders(db)
	ctx := context.Background()
	o := newOrder(t, time.Now(), 30*time.Second)
	o.RequestHash = "h"
	if !insert(t, db, orders, o, order.Idempotency{RequestHash: "h"}) {
		t.Fatal("Insert() = false, want true")
	}
	got, err := orders.Get(ctx, o.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !reflect.DeepEqual(got, o) {
		t.Fatalf("Get() = %+v, want %+v", got, o)
	}
	wantNotFound(t, "Get(unknown)", errOf(orders.Get(ctx, uuid.New())))
}

func TestInsertIdempotencyKey(t *testing.T) {
	db, _ := openDB(t)
	orders := postgres.NewOrders(db)
	ctx := context.Background()
	first := newOrder(t, time.Now(), time.Minute)
	idem := order.Idempotency{Key: "key-1", RequestHash: "hash-1"}
	if !insert(t, db, orders, first, idem) {
		t.Fatal("first Insert() = false")
	}
	second := newOrder(t, time.Now(), time.Minute)
	if insert(t, db, orders, second, order.Idempotency{Key: "key-1", RequestHash: "hash-2"}) {
		t.Fatal("Insert() with a taken key = true")
	}
	if n := pgtest.Count(t, db, `SELECT count(*) FROM order_items WHERE order_id = $1`, second.ID); n != 0 {
		t.Fatalf("the refused order left %d items", n)
	}
	err := msgpg.WithTx(ctx, db, func(tx *sql.Tx) error {
		id, hash, err := orders.ByIdempotencyKey(ctx, tx, "U1", "key-1")
		if err != nil || id != first.ID || hash != "hash-1" {
			t.Errorf("ByIdempotencyKey() = %s, %q, %v; want %s, hash-1", id, hash, err, first.ID)
		}
		if _, _, err := orders.ByIdempotencyKey(ctx, tx, "U1", "nope"); fault.Code(err) != fault.NotFound {
			t.Errorf("ByIdempotencyKey(unknown) error = %v, want %s", err, fault.NotFound)
		}
		if _, _, err := orders.ByIdempotencyKey(ctx, tx, "U2", "key-1"); fault.Code(err) != fault.NotFound {
			t.Errorf("ByIdempotencyKey(another customer's key) error = %v, want %s", err, fault.NotFound)
		}
		return nil
	})
	// The key is the customer's: another customer's order under the same key is its own.
	third := newOrder(t, time.Now(), time.Minute)
	third.CustomerID = "U2"
	if !insert(t, db, orders, third, idem) {
		t.Fatal("Insert() of another customer with the same key = false")
	}
	if err != nil {
		t.Fatal(err)
	}
	// Orders without a key never conflict with each other.
	for range 2 {
		if !insert(t, db, orders, newOrder(t, time.Now(), time.Minute), order.Idempotency{RequestHash: "h"}) {
			t.Fatal("Insert() without a key = false")
		}
	}
}

func TestInsertIdempotencyKeyConcurrently(t *testing.T) {
	db, _ := openDB(t)
	orders := postgres.NewOrders(db)
	const racers = 8
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		inserted int
	)
	for range racers {
		wg.Go(func() {
			o := newOrder(t, time.Now(), time.Minute)
			err := msgpg.WithTx(context.Background(), db, func(tx *sql.Tx) error {
				ok, err := orders.Insert(context.Background(), tx, o, order.Idempotency{Key: "race", RequestHash: "h"})
				if ok {
					mu.Lock()
					inserted++
					mu.Unlock()
				}
				return err
			})
			if err != nil {
				t.Errorf("Insert: %v", err)
			}
		})
	}
	wg.Wait()
	if inserted != 1 || pgtest.Count(t, db, `SELECT count(*) FROM orders`) != 1 {
		t.Fatalf("%d racers inserted, %d orders exist; want 1 and 1", inserted, pgtest.Count(t, db, `SELECT count(*) FROM orders`))
	}
}

func TestUpdate(t *testing.T) {
	db, orders, o := withOrder(t)
	ctx := context.Background()
	later := o.CreatedAt.Add(time.Second)
	events := postgres.NewEvents(db, pgtest.MustOutbox(t), nil)

	tests := []struct {
		name       string
		id         uuid.UUID
		fn         func(*order.Order) (messaging.Event, bool)
		wantCode   string // fault code of the error; "" = no error
		wantErr    error
		wantStatus order.Status
	}{
		{name: "unknown order", id: uuid.New(), fn: func(*order.Order) (messaging.Event, bool) { return messaging.Event{}, false }, wantCode: fault.NotFound, wantStatus: order.StatusPending},
		{name: "complete", id: o.ID, fn: func(o *order.Order) (messaging.Event, bool) { return o.Complete(later) }, wantStatus: order.StatusCompleted},
		{name: "late cancel", id: o.ID, fn: func(o *order.Order) (messaging.Event, bool) { return o.Cancel(order.ReasonPaymentFailed, later) }, wantStatus: order.StatusCompleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := msgpg.WithTx(ctx, db, func(tx *sql.Tx) error {
				_, err := ordertest.Change(ctx, tx, orders, events, tt.id, time.Now(), tt.fn)
				return err
			})
			switch {
			case tt.wantCode != "" && fault.Code(err) != tt.wantCode:
				t.Fatalf("Update() error = %v, want %s", err, tt.wantCode)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("Update() error = %v, want %v", err, tt.wantErr)
			case tt.wantCode == "" && tt.wantErr == nil && err != nil:
				t.Fatalf("Update() error = %v", err)
			}
			got, err := orders.Get(ctx, o.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.wantStatus {
				t.Fatalf("status = %s, want %s", got.Status, tt.wantStatus)
			}
		})
	}
}

func TestUpdateExpired(t *testing.T) {
	db, _ := openDB(t)
	orders := postgres.NewOrders(db)
	ctx := context.Background()
	now := time.Now()
	expired := newOrder(t, now.Add(-time.Minute), 30*time.Second)
	alsoExpired := newOrder(t, now.Add(-2*time.Minute), 30*time.Second)
	fresh := newOrder(t, now, 30*time.Second)
	done := newOrder(t, now.Add(-time.Minute), 30*time.Second)
	done.Complete(now.Add(-50 * time.Second))
	for _, o := range []order.Order{expired, alsoExpired, fresh, done} {
		insert(t, db, orders, o, order.Idempotency{RequestHash: "h"})
	}

	// Another sweeper holds alsoExpired: this one must skip it, not wait.
	holder, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.Exec(`SELECT 1 FROM orders WHERE id = $1 FOR UPDATE`, alsoExpired.ID); err != nil {
		t.Fatal(err)
	}

	sweep := func() []uuid.UUID {
		var ids []uuid.UUID
		err := msgpg.WithTx(ctx, db, func(tx *sql.Tx) error {
			got, err := orders.LockExpired(ctx, tx, now, 100)
			for _, o := range got {
				if len(o.Items) != 2 {
					t.Errorf("expired order %s came with %d items, want 2", o.ID, len(o.Items))
				}
				after := o
				after.Cancel(order.ReasonTimeout, now)
				if err := orders.Save(ctx, tx, o, after); err != nil {
					return err
				}
				ids = append(ids, o.ID)
			}
			return err
		})
		if err != nil {
			t.Fatalf("UpdateExpired: %v", err)
		}
		return ids
	}
	if got := sweep(); !reflect.DeepEqual(got, []uuid.UUID{expired.ID}) {
		t.Fatalf("first sweep canceled %v, want only %s", got, expired.ID)
	}
	holder.Rollback()
	if got := sweep(); !reflect.DeepEqual(got, []uuid.UUID{alsoExpired.ID}) {
		t.Fatalf("second sweep canceled %v, want only %s", got, alsoExpired.ID)
	}
	if got := sweep(); len(got) != 0 {
		t.Fatalf("third sweep canceled %v, want none", got)
	}
	for _, tt := range []struct {
		o    order.Order
		want order.Status
	}{{expired, order.StatusCanceled}, {alsoExpired, order.StatusCanceled}, {fresh, order.StatusPending}, {done, order.StatusCompleted}} {
		got, err := orders.Get(ctx, tt.o.ID)
		if err != nil || got.Status != tt.want {
			t.Errorf("order %s: %s, %v; want %s", tt.o.ID, got.Status, err, tt.want)
		}
	}
}

func TestTimeline(t *testing.T) {
	db, orders, o := withOrder(t)
	ctx := context.Background()
	occurred := time.Now().UTC().Truncate(time.Microsecond)
	entries := []order.TimelineEntry{
		{EventID: uuid.NewString(), EventType: "OrderCreated", Source: order.SourceSelf, OccurredAt: occurred, Data: json.RawMessage(`{"orderId": "x"}`)},
		{EventID: uuid.NewString(), EventType: "StockReserved", Source: "inventory-events", OccurredAt: occurred, Data: json.RawMessage(`{"orderId": "y"}`)},
	}
	for _, e := range append(entries, entries[1]) { // the second one is redelivered
		if err := msgpg.WithTx(ctx, db, func(tx *sql.Tx) error { return orders.Record(ctx, tx, o.ID, e) }); err != nil {
			t.Fatalf("Record: %v", err)
		}
	}
	got, err := orders.Timeline(ctx, o.ID)
	if err != nil {
		t.Fatalf("Timeline: %v", err)
	}
	if len(got) != len(entries) {
		t.Fatalf("Timeline has %d entries, want %d", len(got), len(entries))
	}
	for i, e := range got {
		want := entries[i]
		if e.EventID != want.EventID || e.EventType != want.EventType || e.Source != want.Source ||
			!e.OccurredAt.Equal(want.OccurredAt) || e.RecordedAt.IsZero() || string(e.Data) != string(want.Data) {
			t.Errorf("entry %d = %+v, want %+v", i, e, want)
		}
	}

	empty := newOrder(t, time.Now(), time.Minute)
	insert(t, db, orders, empty, order.Idempotency{RequestHash: "h"})
	if got, err := orders.Timeline(ctx, empty.ID); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Timeline(no events) = %v, %v; want an empty, non-nil slice", got, err)
	}
	wantNotFound(t, "Timeline(unknown)", errOf(orders.Timeline(ctx, uuid.New())))
}

// TestRecordIfExists: an entry of an existing order is recorded once (a redelivery reports the
// order found and writes nothing new), an entry of a missing order writes nothing; and it does
// not wait for a transaction that holds the order for a decision (Lock).
func TestRecordIfExists(t *testing.T) {
	db, orders, o := withOrder(t)
	ctx := context.Background()
	e := order.TimelineEntry{EventID: uuid.NewString(), EventType: "StockCommitted", Source: "inventory-events",
		OccurredAt: time.Now().UTC().Truncate(time.Microsecond), Data: json.RawMessage(`{"orderId": "x"}`)}
	record := func(id uuid.UUID) bool {
		t.Helper()
		var found bool
		if err := msgpg.WithTx(ctx, db, func(tx *sql.Tx) (err error) {
			found, err = orders.RecordIfExists(ctx, tx, id, e)
			return err
		}); err != nil {
			t.Fatalf("RecordIfExists: %v", err)
		}
		return found
	}
	for i := range 2 { // the second is a redelivery
		if !record(o.ID) {
			t.Fatalf("RecordIfExists #%d: order not found", i+1)
		}
	}
	if got, err := orders.Timeline(ctx, o.ID); err != nil || len(got) != 1 || got[0].EventID != e.EventID {
		t.Fatalf("Timeline = %+v, %v; want the one entry", got, err)
	}
	e.EventID = uuid.NewString()
	if record(uuid.New()) {
		t.Fatal("RecordIfExists(missing order) = true")
	}

	// A decider holds the order (Lock) in a transaction still open; recording beside it does not wait.
	hold, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback()
	if _, err := orders.Lock(ctx, hold, o.ID); err != nil {
		t.Fatalf("Lock: %v", err)
	}
	e.EventID = uuid.NewString()
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := msgpg.WithTx(short, db, func(tx *sql.Tx) error {
		_, err := orders.RecordIfExists(short, tx, o.ID, e)
		return err
	}); err != nil {
		t.Fatalf("RecordIfExists beside a held order: %v (it waited for the lock)", err)
	}
}

func TestStatusListener(t *testing.T) {
	db, dsn := openDB(t)
	orders := postgres.NewOrders(db)
	events := postgres.NewEvents(db, pgtest.MustOutbox(t), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := postgres.NewStatusListener(dsn, zerolog.Nop())
	if err != nil {
		t.Fatalf("NewStatusListener: %v", err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = l.Run(ctx) }()

	watched := newOrder(t, time.Now(), time.Minute)
	other := newOrder(t, time.Now(), time.Minute)
	insert(t, db, orders, watched, order.Idempotency{RequestHash: "h"})
	insert(t, db, orders, other, order.Idempotency{RequestHash: "h"})
	wake, stop := l.Subscribe(watched.ID)
	defer stop()

	// The listener connects in the background: keep announcing until it hears.
	deadline := time.After(10 * time.Second)
	for {
		if _, err := db.Exec(`SELECT pg_notify($1, $2)`, postgres.StatusChannel, other.ID.String()); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`SELECT pg_notify($1, $2)`, postgres.StatusChannel, watched.ID.String()); err != nil {
			t.Fatal(err)
		}
		select {
		case <-wake:
		case <-time.After(200 * time.Millisecond):
			continue
		case <-deadline:
			t.Fatal("no wake-up within 10s")
		}
		break
	}

	// A committed status change wakes the subscriber; a rolled-back one does not.
	drain(wake)
	_ = msgpg.WithTx(context.Background(), db, func(tx *sql.Tx) error {
		if _, err := ordertest.Change(context.Background(), tx, orders, events, watched.ID, time.Now(), func(o *order.Order) (messaging.Event, bool) {
			return o.Cancel(order.ReasonTimeout, time.Now())
		}); err != nil {
			t.Fatal(err)
		}
		return errors.New("roll back")
	})
	select {
	case <-wake:
		t.Fatal("woken by a rolled-back change")
	case <-time.After(300 * time.Millisecond):
	}
	if err := msgpg.WithTx(context.Background(), db, func(tx *sql.Tx) error {
		_, err := ordertest.Change(context.Background(), tx, orders, events, watched.ID, time.Now(), func(o *order.Order) (messaging.Event, bool) {
			return o.Complete(time.Now())
		})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	case <-time.After(5 * time.Second):
		t.Fatal("no wake-up after a committed status change")
	}
	cancel()
	<-done
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func TestPrices(t *testing.T) {
	db, _ := openDB(t)
	prices := postgres.NewPrices(db)
	ctx := context.Background()
	wantNotFound(t, "Get(an unpriced SKU)", errOf(prices.Get(ctx, "A100")))
	for _, p := range []order.Price{{SKU: "A100", UnitPrice: 1, Currency: "USD"}, {SKU: "A100", UnitPrice: 15000, Currency: "KRW"}, {SKU: "B200", UnitPrice: 0, Currency: "KRW"}} {
		if got, err := prices.Set(ctx, p); err != nil || got != p {
			t.Fatalf("Set(%+v) = %+v, %v", p, got, err)
		}
	}
	if _, err := prices.Set(ctx, order.Price{SKU: "C300", UnitPrice: -1, Currency: "KRW"}); fault.Code(err) != fault.Invalid {
		t.Fatalf("Set of a negative price = %v, want %s", err, fault.Invalid)
	}
	if got, err := prices.Get(ctx, "A100"); err != nil || got.UnitPrice != 15000 || got.Currency != "KRW" {
		t.Fatalf("Get = %+v, %v; want the last price set", got, err)
	}
	err := msgpg.WithTx(ctx, db, func(tx *sql.Tx) error {
		got, err := prices.Of(ctx, tx, []string{"A100", "B200", "NOPE"})
		if err != nil || len(got) != 2 || got["B200"].UnitPrice != 0 {
			t.Errorf("Of = %+v, %v; want A100 and B200", got, err)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTerminalOrderForgetsPaymentToken: the transaction that makes an order COMPLETED or
// CANCELED clears its stored payment token; a change that leaves it PENDING keeps it.
func TestTerminalOrderForgetsPaymentToken(t *testing.T) {
	db, _ := openDB(t)
	orders := postgres.NewOrders(db)
	events := postgres.NewEvents(db, pgtest.MustOutbox(t), nil)
	ctx := context.Background()
	now := time.Now()
	tests := []struct {
		name string
		// expired places the order past its deadline and changes it through UpdateExpired.
		expired bool
		fn      func(*order.Order) (messaging.Event, bool)
		want    string
	}{
		{"completed", false, func(o *order.Order) (messaging.Event, bool) { return o.Complete(o.CreatedAt.Add(time.Second)) }, ""},
		{"canceled", false, func(o *order.Order) (messaging.Event, bool) {
			return o.Cancel(order.ReasonPaymentFailed, o.CreatedAt.Add(time.Second))
		}, ""},
		{"canceled by the deadline sweeper", true, func(o *order.Order) (messaging.Event, bool) { return o.Cancel(order.ReasonTimeout, now) }, ""},
		{"still pending", false, func(*order.Order) (messaging.Event, bool) { return messaging.Event{}, false }, "tok_ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			placed := now
			if tt.expired {
				placed = now.Add(-time.Minute)
			}
			o := newOrder(t, placed, 30*time.Second)
			insert(t, db, orders, o, order.Idempotency{RequestHash: "h"})
			var returned []order.Order
			err := msgpg.WithTx(ctx, db, func(tx *sql.Tx) error {
				if tt.expired {
					locked, err := orders.LockExpired(ctx, tx, now, 100)
					if err != nil || len(locked) != 1 {
						return fmt.Errorf("lock expired: %v, %d orders", err, len(locked))
					}
				}
				got, err := ordertest.Change(ctx, tx, orders, events, o.ID, time.Now(), tt.fn)
				returned = append(returned, got)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(returned) != 1 || returned[0].PaymentToken != tt.want {
				t.Errorf("the updated order = %+v, want payment token %q", returned, tt.want)
			}
			var stored string
			if err := db.QueryRowContext(ctx, `SELECT payment_token FROM orders WHERE id = $1`, o.ID).Scan(&stored); err != nil {
				t.Fatal(err)
			}
			if stored != tt.want {
				t.Errorf("stored payment token = %q, want %q", stored, tt.want)
			}
		})
	}
}

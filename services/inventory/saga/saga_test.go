package saga_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"outboxsaga.dev/inventory"
	"outboxsaga.dev/inventory/app"
	"outboxsaga.dev/inventory/postgres"
	"outboxsaga.dev/inventory/saga"
	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/kafka"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/sagatest"
)

// fixture is a migrated test database with a captured outbox and the saga's Router behind the
// consumer's decoding (sagatest.Harness): no retry, no dead letters.
type fixture struct {
	*sagatest.Harness
	db           *sql.DB
	stockLevels  *postgres.StockLevels
	reservations *postgres.Reservations
	steps        *saga.Steps
	reg          *prometheus.Registry
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := sagatest.Open(t, "inventory", postgres.Migrations)
	reg := prometheus.NewRegistry()
	f := &fixture{db: db, stockLevels: postgres.NewStockLevels(db, pgtest.MustOutbox(t)), reservations: postgres.NewReservations(db), reg: reg}
	f.steps = saga.New(db, pgtest.MustOutbox(t), app.New(f.reservations, app.NewMetrics(reg)))
	f.Harness = sagatest.New(t, db, f.steps.Router())
	return f
}

// consumer returns the whole chain the service's consumer runs (kafka.Handlers): retry, where a
// database outage or conflict (msgpg.IsUnavailable) does not count against maxAttempts, then
// the dead letters.
func (f *fixture) consumer(t *testing.T, maxAttempts int) messaging.Handler {
	t.Helper()
	consume, _ := f.Consumer("inventory", maxAttempts)
	return consume
}

// record is a Kafka record as Debezium's outbox router produces it.
type record = sagatest.Record

// event builds the record of an order event in a new trace.
func event(t *testing.T, eventType, orderID string, data any) record {
	t.Helper()
	return sagatest.Event(t, "order", eventType, 1, orderID, data)
}

// deliver hands r to the chain as the consumer does: a fresh, undecoded Message per delivery.
func (f *fixture) deliver(r record) error { return f.Deliver(r) }

// deliverTo hands r to the handler chain h.
func deliverTo(ctx context.Context, h messaging.Handler, r record) error {
	return h(ctx, r.Message())
}

// message is r as the consumer hands it over from offset of order-events.
func message(r record, offset int64) *messaging.Message {
	m := r.Message()
	m.Offset = offset
	return m
}

func (f *fixture) mustDeliver(t *testing.T, r record) {
	t.Helper()
	if err := f.deliver(r); err != nil {
		t.Fatalf("deliver %s: %v", r.Envelope.EventType, err)
	}
}

type item = map[string]any

func orderCreated(t *testing.T, orderID string, items ...item) record {
	return event(t, "OrderCreated", orderID, map[string]any{
		"orderId": orderID, "customerId": "U1", "items": items,
		"amount": 39000, "currency": "KRW", "paymentToken": "tok_ok",
	})
}

func orderCanceled(t *testing.T, orderID, reason string, items ...item) record {
	return event(t, "OrderCanceled", orderID, map[string]any{"orderId": orderID, "reason": reason, "items": items})
}

func orderCompleted(t *testing.T, orderID string, items ...item) record {
	return event(t, "OrderCompleted", orderID, map[string]any{
		"orderId": orderID, "items": items, "amount": 39000, "currency": "KRW",
	})
}

func line(sku string, qty int) item {
	return item{"sku": sku, "qty": qty, "unitPrice": 15000}
}

func (f *fixture) setStock(t *testing.T, sku string, available int64) {
	t.Helper()
	if _, err := f.stockLevels.SetAvailable(context.Background(), sku, available); err != nil {
		t.Fatalf("SetAvailable(%s) error = %v", sku, err)
	}
}

func (f *fixture) stock(t *testing.T, sku string) inventory.Stock {
	t.Helper()
	st, err := f.stockLevels.Get(context.Background(), sku)
	if err != nil {
		t.Fatalf("Get(%s) error = %v", sku, err)
	}
	return st
}

// status returns the order's reservation status, or "" when it has none.
func (f *fixture) status(t *testing.T, orderID string) inventory.Status {
	t.Helper()
	r, err := f.reservations.Get(context.Background(), orderID)
	if errors.Is(err, postgres.ErrNoReservation) {
		return ""
	}
	if err != nil {
		t.Fatalf("Reservation(%s) error = %v", orderID, err)
	}
	return r.Status
}

func (f *fixture) inbox(t *testing.T) int {
	t.Helper()
	return f.count(t, `SELECT count(*) FROM processed_events`)
}

// checkDecisions checks inventory_reservations_total: want by outcome, 0 for the others.
func (f *fixture) checkDecisions(t *testing.T, want map[inventory.Outcome]int64) {
	t.Helper()
	text := "# HELP inventory_reservations_total Saga decisions on reservations, by outcome (reserved, failed, released, committed, ignored).\n" +
		"# TYPE inventory_reservations_total counter\n"
	for _, o := range []inventory.Outcome{inventory.OutcomeCommitted, inventory.OutcomeFailed, inventory.OutcomeIgnored, inventory.OutcomeReleased, inventory.OutcomeReserved} {
		text += fmt.Sprintf("inventory_reservations_total{outcome=%q} %d\n", o, want[o])
	}
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(text), "inventory_reservations_total"); err != nil {
		t.Errorf("metrics: %v", err)
	}
}

func (f *fixture) count(t *testing.T, q string, args ...any) int {
	return pgtest.Count(t, f.db, q, args...)
}

// emitted returns the events the steps wrote to the outbox for orderID, in order
// (pgtest.Emitted checks each against its schema, its row and its trace), after checking that
// each goes to inventory-events and is traced as a child of the event that caused it.
func (f *fixture) emitted(t *testing.T, orderID string, causes ...record) []pgtest.Event {
	t.Helper()
	events := pgtest.Emitted(t, f.db, orderID)
	for i, e := range events {
		if e.AggregateType != inventory.AggregateType {
			t.Errorf("%s aggregate type = %s, want %s", e.EventType, e.AggregateType, inventory.AggregateType)
		}
		if i < len(causes) && (e.TraceID != causes[i].Traceparent.TraceID() || e.Traceparent.SpanID() == causes[i].Traceparent.SpanID()) {
			t.Errorf("%s traceparent %s: want a child of %s", e.EventType, e.Traceparent, causes[i].Traceparent)
		}
	}
	return events
}

func dataOf(t *testing.T, e pgtest.Event) map[string]any {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestOrderCreated(t *testing.T) {
	tests := []struct {
		name       string
		items      []item
		wantStatus inventory.Status
		wantStock  map[string]inventory.Stock
		wantEvent  string
		wantData   map[string]any
	}{
		{
			name:       "every item available",
			items:      []item{line("A", 2), line("B", 1)},
			wantStatus: inventory.StatusReserved,
			wantStock:  map[string]inventory.Stock{"A": {SKU: "A", Available: 3, Reserved: 2}, "B": {SKU: "B", Available: 0, Reserved: 1}},
			wantEvent:  inventory.EventStockReserved,
			wantData: map[string]any{
				"orderId": o1, "amount": 39000.0, "currency": "KRW", "paymentToken": "tok_ok",
				"items": []any{
					map[string]any{"sku": "A", "qty": 2.0, "unitPrice": 15000.0},
					map[string]any{"sku": "B", "qty": 1.0, "unitPrice": 15000.0},
				},
			},
		},
		{
			name:       "one item short: nothing is reserved",
			items:      []item{line("A", 2), line("B", 2)},
			wantStatus: inventory.StatusFailed,
			wantStock:  map[string]inventory.Stock{"A": {SKU: "A", Available: 5}, "B": {SKU: "B", Available: 1}},
			wantEvent:  inventory.EventStockReservationFailed,
			wantData:   map[string]any{"orderId": o1, "reason": "OUT_OF_STOCK", "skus": []any{"B"}},
		},
		{
			name:       "unknown sku",
			items:      []item{line("A", 1), line("NOPE", 1)},
			wantStatus: inventory.StatusFailed,
			wantStock:  map[string]inventory.Stock{"A": {SKU: "A", Available: 5}},
			wantEvent:  inventory.EventStockReservationFailed,
			wantData:   map[string]any{"orderId": o1, "reason": "OUT_OF_STOCK", "skus": []any{"NOPE"}},
		},
		{
			name:       "repeated sku is summed",
			items:      []item{line("B", 1), line("B", 1)},
			wantStatus: inventory.StatusFailed,
			wantStock:  map[string]inventory.Stock{"B": {SKU: "B", Available: 1}},
			wantEvent:  inventory.EventStockReservationFailed,
			wantData:   map[string]any{"orderId": o1, "reason": "OUT_OF_STOCK", "skus": []any{"B"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.setStock(t, "A", 5)
			f.setStock(t, "B", 1)
			created := orderCreated(t, o1, tt.items...)
			f.mustDeliver(t, created)

			if got := f.status(t, o1); got != tt.wantStatus {
				t.Errorf("status = %s, want %s", got, tt.wantStatus)
			}
			for sku, want := range tt.wantStock {
				if got := f.stock(t, sku); got != want {
					t.Errorf("stock %s = %+v, want %+v", sku, got, want)
				}
			}
			if n := f.count(t, `SELECT count(*) FROM processed_events WHERE event_id = $1`, created.Envelope.EventID); n != 1 {
				t.Errorf("inbox rows for the event = %d, want 1", n)
			}
			events := f.emitted(t, o1, created)
			if len(events) != 1 || events[0].EventType != tt.wantEvent {
				t.Fatalf("emitted %v, want [%s]", pgtest.Types(events), tt.wantEvent)
			}
			if got := dataOf(t, events[0]); !reflect.DeepEqual(got, tt.wantData) {
				t.Errorf("data = %v, want %v", got, tt.wantData)
			}
			if want := o1 + "#" + tt.wantEvent + "#1"; events[0].IdempotencyKey != want {
				t.Errorf("idempotencyKey = %s, want %s", events[0].IdempotencyKey, want)
			}
		})
	}
}

func TestTransitions(t *testing.T) {
	tests := []struct {
		name       string
		next       func(t *testing.T) record
		wantStatus inventory.Status
		wantStock  inventory.Stock
		wantEvent  string
	}{
		{
			name:       "canceled releases",
			next:       func(t *testing.T) record { return orderCanceled(t, o1, "PAYMENT_FAILED", line("A", 2)) },
			wantStatus: inventory.StatusReleased,
			wantStock:  inventory.Stock{SKU: "A", Available: 5},
			wantEvent:  inventory.EventStockReleased,
		},
		{
			name:       "completed commits",
			next:       func(t *testing.T) record { return orderCompleted(t, o1, line("A", 2)) },
			wantStatus: inventory.StatusCommitted,
			wantStock:  inventory.Stock{SKU: "A", Available: 3, Sold: 2},
			wantEvent:  inventory.EventStockCommitted,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.setStock(t, "A", 5)
			created := orderCreated(t, o1, line("A", 2))
			f.mustDeliver(t, created)
			next := tt.next(t)
			f.mustDeliver(t, next)

			if got := f.status(t, o1); got != tt.wantStatus {
				t.Errorf("status = %s, want %s", got, tt.wantStatus)
			}
			if got := f.stock(t, "A"); got != tt.wantStock {
				t.Errorf("stock = %+v, want %+v", got, tt.wantStock)
			}
			events := f.emitted(t, o1, created, next)
			if got, want := pgtest.Types(events), []string{inventory.EventStockReserved, tt.wantEvent}; !reflect.DeepEqual(got, want) {
				t.Fatalf("emitted %v, want %v", got, want)
			}
			wantData := map[string]any{"orderId": o1, "items": []any{map[string]any{"sku": "A", "qty": 2.0, "unitPrice": 15000.0}}}
			if got := dataOf(t, events[1]); !reflect.DeepEqual(got, wantData) {
				t.Errorf("data = %v, want %v", got, wantData)
			}
			if n := f.inbox(t); n != 2 {
				t.Errorf("inbox rows = %d, want 2", n)
			}
		})
	}
}

// Every event redelivered with the same event id is skipped by the inbox: no state change, no
// second event.
func TestRedeliveryChangesNothing(t *testing.T) {
	tests := []struct {
		name  string
		steps func(t *testing.T) []record // the last one is redelivered
		want  inventory.Stock
	}{
		{
			name:  "OrderCreated",
			steps: func(t *testing.T) []record { return []record{orderCreated(t, o1, line("A", 2))} },
			want:  inventory.Stock{SKU: "A", Available: 3, Reserved: 2},
		},
		{
			name: "OrderCanceled",
			steps: func(t *testing.T) []record {
				return []record{orderCreated(t, o1, line("A", 2)), orderCanceled(t, o1, "TIMEOUT", line("A", 2))}
			},
			want: inventory.Stock{SKU: "A", Available: 5},
		},
		{
			name: "OrderCompleted",
			steps: func(t *testing.T) []record {
				return []record{orderCreated(t, o1, line("A", 2)), orderCompleted(t, o1, line("A", 2))}
			},
			want: inventory.Stock{SKU: "A", Available: 3, Sold: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.setStock(t, "A", 5)
			steps := tt.steps(t)
			for _, r := range steps {
				f.mustDeliver(t, r)
			}
			status := f.status(t, o1)
			f.mustDeliver(t, steps[len(steps)-1])
			f.mustDeliver(t, steps[len(steps)-1])

			if got := f.stock(t, "A"); got != tt.want {
				t.Errorf("stock = %+v, want %+v", got, tt.want)
			}
			if got := f.status(t, o1); got != status {
				t.Errorf("status = %s, want %s", got, status)
			}
			if got := len(f.emitted(t, o1)); got != len(steps) {
				t.Errorf("emitted %d events, want %d", got, len(steps))
			}
			if got := f.inbox(t); got != len(steps) {
				t.Errorf("inbox rows = %d, want %d", got, len(steps))
			}
		})
	}
}

// An OrderCreated for an order inventory has seen, under a new event id (the producer emitted it
// twice), is recorded in the inbox and reserves nothing.
func TestOrderCreatedTwiceUnderNewEventID(t *testing.T) {
	f := newFixture(t)
	f.setStock(t, "A", 5)
	f.mustDeliver(t, orderCreated(t, o1, line("A", 2)))
	f.mustDeliver(t, orderCreated(t, o1, line("A", 2)))

	if got, want := f.stock(t, "A"), (inventory.Stock{SKU: "A", Available: 3, Reserved: 2}); got != want {
		t.Errorf("stock = %+v, want %+v", got, want)
	}
	if got := pgtest.Types(f.emitted(t, o1)); !reflect.DeepEqual(got, []string{inventory.EventStockReserved}) {
		t.Errorf("emitted %v, want one StockReserved", got)
	}
	if got := f.inbox(t); got != 2 {
		t.Errorf("inbox rows = %d, want 2", got)
	}
}

// Late and out-of-order events never move a terminal reservation and never hold stock for a
// terminal order (invariant 2).
func TestLateEventsNeverMoveATerminalState(t *testing.T) {
	tests := []struct {
		name       string
		stock      int64
		events     func(t *testing.T) []record
		wantStatus inventory.Status
		wantStock  inventory.Stock
		wantEvents []string
	}{
		{
			name:  "cancel after commit",
			stock: 5,
			events: func(t *testing.T) []record {
				return []record{orderCreated(t, o1, line("A", 2)), orderCompleted(t, o1, line("A", 2)), orderCanceled(t, o1, "TIMEOUT", line("A", 2))}
			},
			wantStatus: inventory.StatusCommitted,
			wantStock:  inventory.Stock{SKU: "A", Available: 3, Sold: 2},
			wantEvents: []string{inventory.EventStockReserved, inventory.EventStockCommitted},
		},
		{
			name:  "complete after release",
			stock: 5,
			events: func(t *testing.T) []record {
				return []record{orderCreated(t, o1, line("A", 2)), orderCanceled(t, o1, "TIMEOUT", line("A", 2)), orderCompleted(t, o1, line("A", 2))}
			},
			wantStatus: inventory.StatusReleased,
			wantStock:  inventory.Stock{SKU: "A", Available: 5},
			wantEvents: []string{inventory.EventStockReserved, inventory.EventStockReleased},
		},
		{
			name:  "cancel after a failed reservation releases nothing",
			stock: 1,
			events: func(t *testing.T) []record {
				return []record{orderCreated(t, o1, line("A", 2)), orderCanceled(t, o1, "OUT_OF_STOCK", line("A", 2))}
			},
			wantStatus: inventory.StatusFailed,
			wantStock:  inventory.Stock{SKU: "A", Available: 1},
			wantEvents: []string{inventory.EventStockReservationFailed},
		},
		{
			name:  "complete after a failed reservation sells nothing",
			stock: 1,
			events: func(t *testing.T) []record {
				return []record{orderCreated(t, o1, line("A", 2)), orderCompleted(t, o1, line("A", 2))}
			},
			wantStatus: inventory.StatusFailed,
			wantStock:  inventory.Stock{SKU: "A", Available: 1},
			wantEvents: []string{inventory.EventStockReservationFailed},
		},
		{
			name:  "created after cancel reserves nothing",
			stock: 5,
			events: func(t *testing.T) []record {
				return []record{orderCanceled(t, o1, "TIMEOUT", line("A", 2)), orderCreated(t, o1, line("A", 2))}
			},
			wantStatus: inventory.StatusReleased,
			wantStock:  inventory.Stock{SKU: "A", Available: 5},
			wantEvents: nil,
		},
		{
			name:  "complete without a reservation",
			stock: 5,
			events: func(t *testing.T) []record {
				return []record{orderCompleted(t, o1, line("A", 2))}
			},
			wantStatus: "",
			wantStock:  inventory.Stock{SKU: "A", Available: 5},
			wantEvents: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.setStock(t, "A", tt.stock)
			events := tt.events(t)
			for _, r := range events {
				f.mustDeliver(t, r)
			}
			if got := f.status(t, o1); got != tt.wantStatus {
				t.Errorf("status = %q, want %q", got, tt.wantStatus)
			}
			if got := f.stock(t, "A"); got != tt.wantStock {
				t.Errorf("stock = %+v, want %+v", got, tt.wantStock)
			}
			if got := pgtest.Types(f.emitted(t, o1)); !slices.Equal(got, tt.wantEvents) {
				t.Errorf("emitted %v, want %v", got, tt.wantEvents)
			}
			if got := f.inbox(t); got != len(events) {
				t.Errorf("inbox rows = %d, want %d (every event is recorded)", got, len(events))
			}
		})
	}
}

// Poison is Permanent (so the consumer dead-letters it without retrying) and writes nothing,
// not even the inbox row.
func TestPoisonIsPermanentAndWritesNothing(t *testing.T) {
	mismatch := func(t *testing.T) record {
		r := orderCreated(t, o1, line("A", 1))
		var env map[string]any
		_ = json.Unmarshal(r.Value, &env)
		env["data"].(map[string]any)["orderId"] = o2
		r.Value, _ = json.Marshal(env)
		return r
	}
	unknownType := func(t *testing.T) record {
		return event(t, "OrderShipped", o1, map[string]any{"orderId": o1})
	}
	undecodable := func(t *testing.T) record {
		r := orderCreated(t, o1, line("A", 1))
		r.Value = []byte("{not json")
		return r
	}
	tests := []struct {
		name   string
		record func(t *testing.T) record
	}{
		{name: "data names another order", record: mismatch},
		{name: "unknown event type", record: unknownType},
		{name: "undecodable value", record: undecodable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.setStock(t, "A", 5)
			err := f.deliver(tt.record(t))
			if !messaging.IsPermanent(err) {
				t.Fatalf("deliver() error = %v, want a Permanent error", err)
			}
			if got := f.inbox(t); got != 0 {
				t.Errorf("inbox rows = %d, want 0", got)
			}
			if got := f.count(t, `SELECT count(*) FROM reservations`); got != 0 {
				t.Errorf("reservations = %d, want 0", got)
			}
			if got := f.stock(t, "A"); got != (inventory.Stock{SKU: "A", Available: 5}) {
				t.Errorf("stock = %+v, want untouched", got)
			}
		})
	}
}

func TestRouterHandlesExactlyTheOrderEvents(t *testing.T) {
	router := newFixture(t).steps.Router()
	tests := []struct {
		eventType string
		version   int
		routed    bool
	}{
		// The router sees the latest version only: Decode upcasts a v1 (messaging/upcast).
		{eventType: "OrderCreated", version: 2, routed: true},
		{eventType: "OrderCanceled", version: 1, routed: true},
		{eventType: "OrderCompleted", version: 1, routed: true},
		{eventType: "OrderCreated", version: 1},
		{eventType: "OrderCreated", version: 3},
		{eventType: "StockReserved", version: 1},
		{eventType: "PaymentFailed", version: 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s v%d", tt.eventType, tt.version), func(t *testing.T) {
			m := &messaging.Message{Envelope: messaging.Envelope{EventID: uuid.NewString(), EventType: tt.eventType, EventVersion: tt.version}}
			err := router.Dispatch(context.Background(), m)
			if noRoute := errors.Is(err, messaging.ErrNoRoute); noRoute == tt.routed {
				t.Errorf("Dispatch() error = %v, want routed %v", err, tt.routed)
			}
		})
	}
}

// 100 orders race for 10 units of one SKU: exactly 10 win, nothing is oversold, and no handler
// fails (a deadlock or serialization failure would have to be retried, not leaked).
func TestConcurrentReservations(t *testing.T) {
	const orders, available = 100, 10
	f := newFixture(t)
	f.setStock(t, "HOT", available)
	records := make([]record, orders)
	for i := range records {
		records[i] = orderCreated(t, orderN(i), line("HOT", 1))
	}

	var (
		wg     sync.WaitGroup
		failed atomic.Int32
		start  = make(chan struct{})
	)
	for _, r := range records {
		wg.Go(func() {
			<-start
			if err := f.deliver(r); err != nil {
				failed.Add(1)
				t.Errorf("deliver %s: %v", r.Key, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d handlers failed", failed.Load())
	}

	if got, want := f.stock(t, "HOT"), (inventory.Stock{SKU: "HOT", Available: 0, Reserved: available}); got != want {
		t.Errorf("stock = %+v, want %+v", got, want)
	}
	byStatus := map[inventory.Status]int{}
	rows, err := f.db.Query(`SELECT status, count(*) FROM reservations GROUP BY status`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			s inventory.Status
			n int
		)
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		byStatus[s] = n
	}
	if want := map[inventory.Status]int{inventory.StatusReserved: available, inventory.StatusFailed: orders - available}; !reflect.DeepEqual(byStatus, want) {
		t.Errorf("reservations by status = %v, want %v", byStatus, want)
	}
	if got := f.inbox(t); got != orders {
		t.Errorf("inbox rows = %d, want %d", got, orders)
	}
	if got := f.count(t, `SELECT count(*) FROM outbox_seen WHERE type = $1`, inventory.EventStockReserved); got != available {
		t.Errorf("StockReserved emitted = %d, want %d", got, available)
	}

	f.checkDecisions(t, map[inventory.Outcome]int64{inventory.OutcomeFailed: orders - available, inventory.OutcomeReserved: available})
}

// Orders that list the same SKUs in opposite orders lock the rows in one (SKU) order, so they
// never deadlock, and all-or-nothing holds per order.
func TestConcurrentMultiSKUOrdersDoNotDeadlock(t *testing.T) {
	const orders = 60
	f := newFixture(t)
	f.setStock(t, "A", 40)
	f.setStock(t, "B", 1000)
	var wg sync.WaitGroup
	for i := range orders {
		items := []item{line("A", 1), line("B", 1)}
		if i%2 == 1 {
			items = []item{line("B", 1), line("A", 1)}
		}
		r := orderCreated(t, orderN(i), items...)
		wg.Go(func() {
			if err := f.deliver(r); err != nil {
				t.Errorf("deliver %s: %v", r.Key, err)
			}
		})
	}
	wg.Wait()

	reserved := f.count(t, `SELECT count(*) FROM reservations WHERE status = 'RESERVED'`)
	if reserved != 40 {
		t.Errorf("reserved orders = %d, want 40", reserved)
	}
	if got, want := f.stock(t, "A"), (inventory.Stock{SKU: "A", Available: 0, Reserved: 40}); got != want {
		t.Errorf("stock A = %+v, want %+v", got, want)
	}
	if got, want := f.stock(t, "B"), (inventory.Stock{SKU: "B", Available: 960, Reserved: 40}); got != want {
		t.Errorf("stock B = %+v, want %+v (all or nothing: B moves only with A)", got, want)
	}
}

// A serialization failure or deadlock rolls the step back and the consumer runs it again
// (msgpg.IsUnavailable: it never counts against the attempts, so one attempt is enough); one
// that persists stays a retryable (not Permanent) error until the consumer stops, and is never
// dead-lettered.
func TestTransientConflicts(t *testing.T) {
	tests := []struct {
		name       string
		failures   int
		wantErr    bool
		wantStatus inventory.Status
	}{
		{name: "one conflict is retried", failures: 1, wantStatus: inventory.StatusReserved},
		{name: "a lasting conflict is returned, retryable", failures: 1000, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.setStock(t, "A", 5)
			// A sequence is not transactional: it counts attempts across rollbacks.
			_, err := f.db.Exec(fmt.Sprintf(`
				CREATE SEQUENCE attempts;
				CREATE FUNCTION conflict() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN
				  IF nextval('attempts') <= %d THEN
				    RAISE EXCEPTION 'simulated conflict' USING ERRCODE = 'deadlock_detected';
				  END IF;
				  RETURN NEW;
				END $$;
				CREATE TRIGGER conflict BEFORE INSERT ON reservations FOR EACH ROW EXECUTE FUNCTION conflict();`, tt.failures))
			if err != nil {
				t.Fatal(err)
			}

			// The consumer retries until its context ends (a rebalance, a shutdown).
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err = deliverTo(ctx, f.consumer(t, 1), orderCreated(t, o1, line("A", 2)))
			if (err != nil) != tt.wantErr || messaging.IsPermanent(err) || (err != nil && !msgpg.IsUnavailable(err)) {
				t.Fatalf("deliver() error = %v, wantErr %v (never Permanent, always retryable)", err, tt.wantErr)
			}
			if got := f.status(t, o1); got != tt.wantStatus {
				t.Errorf("status = %q, want %q", got, tt.wantStatus)
			}
			wantInbox, wantStock := 1, inventory.Stock{SKU: "A", Available: 3, Reserved: 2}
			if tt.wantErr {
				wantInbox, wantStock = 0, inventory.Stock{SKU: "A", Available: 5}
			}
			if got := f.inbox(t); got != wantInbox {
				t.Errorf("inbox rows = %d, want %d", got, wantInbox)
			}
			if got := f.stock(t, "A"); got != wantStock {
				t.Errorf("stock = %+v, want %+v", got, wantStock)
			}
			if got := f.count(t, `SELECT count(*) FROM dead_letters`); got != 0 {
				t.Errorf("dead letters = %d, want 0: a conflict is not poison", got)
			}
		})
	}
}

// A broken invariant the domain finds (fault.Internal: the stock holds less than a reservation)
// is not poison by itself: the step fails retryably, the consumer tries it its attempts and
// then dead-letters it. Nothing of the step is written.
func TestBrokenInvariantIsRetriedThenDeadLettered(t *testing.T) {
	f := newFixture(t)
	f.setStock(t, "A", 5)
	f.mustDeliver(t, orderCreated(t, o1, line("A", 2)))
	if _, err := f.db.Exec(`UPDATE stock SET reserved = 1 WHERE sku = 'A'`); err != nil {
		t.Fatal(err)
	}
	completed := orderCompleted(t, o1, line("A", 2))

	err := f.deliver(completed)
	if err == nil || messaging.IsPermanent(err) || msgpg.IsUnavailable(err) {
		t.Fatalf("deliver() error = %v, want a retryable error that counts against the attempts", err)
	}
	if err := deliverTo(context.Background(), f.consumer(t, 2), completed); err != nil {
		t.Fatalf("consume() error = %v, want nil (dead-lettered)", err)
	}
	if got := f.count(t, `SELECT count(*) FROM dead_letters WHERE event_id = $1 AND attempts = 2`, completed.Envelope.EventID); got != 1 {
		t.Errorf("dead letters of the event after 2 attempts = %d, want 1", got)
	}
	if got := f.status(t, o1); got != inventory.StatusReserved {
		t.Errorf("status = %s, want %s", got, inventory.StatusReserved)
	}
	if got, want := f.stock(t, "A"), (inventory.Stock{SKU: "A", Available: 3, Reserved: 1}); got != want {
		t.Errorf("stock = %+v, want %+v", got, want)
	}
	if got := f.inbox(t); got != 1 {
		t.Errorf("inbox rows = %d, want 1 (only OrderCreated)", got)
	}
}

// Orders of the tests (events carry uuids as order ids).
const (
	o1 = "0b9c6a1e-2f3d-4e5a-8b7c-000000000001"
	o2 = "0b9c6a1e-2f3d-4e5a-8b7c-000000000002"
)

// orderN returns the id of the test's order number n.
func orderN(n int) string { return fmt.Sprintf("0b9c6a1e-2f3d-4e5a-8b7c-%012d", n) }

// TestStepsInABatch: two reservations' whole lives and a redelivery, as a consumer with a batch
// size hands them over (kafka.HandleBatch over msgpg.Batches): one transaction, each step seeing
// what the ones before it wrote, and the same stock, reservations, events and counts as one by
// one.
func TestStepsInABatch(t *testing.T) {
	f := newFixture(t)
	f.setStock(t, "A", 10)
	f.setStock(t, "B", 5)
	o2 := orderN(2)
	created := orderCreated(t, o1, line("A", 2))
	records := []record{created, orderCreated(t, o2, line("A", 1), line("B", 1)), orderCanceled(t, o1, "PAYMENT_FAILED", line("A", 2)),
		orderCompleted(t, o2, line("A", 1), line("B", 1)), created}
	ms := make([]*messaging.Message, len(records))
	for i, r := range records {
		ms[i] = message(r, int64(i))
	}
	done := 0
	if err := kafka.HandleBatch(context.Background(), f.Handler(), msgpg.Batches(f.db), ms, func(int) { done++ }); err != nil || done != len(ms) {
		t.Fatalf("HandleBatch = %v after %d messages done, want nil after %d", err, done, len(ms))
	}
	for _, want := range []inventory.Stock{{SKU: "A", Available: 9, Sold: 1}, {SKU: "B", Available: 4, Sold: 1}} {
		if got := f.stock(t, want.SKU); got != want {
			t.Errorf("stock = %+v, want %+v", got, want)
		}
	}
	if s1, s2 := f.status(t, o1), f.status(t, o2); s1 != inventory.StatusReleased || s2 != inventory.StatusCommitted {
		t.Errorf("reservations %s and %s, want RELEASED and COMMITTED", s1, s2)
	}
	if got := pgtest.Types(f.emitted(t, o1)); !slices.Equal(got, []string{inventory.EventStockReserved, inventory.EventStockReleased}) {
		t.Errorf("events of the canceled order %v", got)
	}
	if got := pgtest.Types(f.emitted(t, o2)); !slices.Equal(got, []string{inventory.EventStockReserved, inventory.EventStockCommitted}) {
		t.Errorf("events of the completed order %v", got)
	}
	if got, tx := f.inbox(t), f.count(t, `SELECT count(DISTINCT xmin::text) FROM processed_events`); got != 4 || tx != 1 {
		t.Errorf("inbox rows = %d from %d transactions, want 4 from 1", got, tx)
	}
	f.checkDecisions(t, map[inventory.Outcome]int64{inventory.OutcomeCommitted: 1, inventory.OutcomeReleased: 1, inventory.OutcomeReserved: 2})
}

// TestConcurrentBatches: batches of four partitions at once through the consumer's whole chain,
// each record reserving one unit of one SKU, the partitions taking the SKUs in different orders.
// Across the records of a batch the stock locks accumulate until the commit, so batches can
// deadlock (40P01): the loser rolls back and goes one by one. In the end every order is decided
// once, stock is conserved, the short SKUs fail the right number of orders, each decision is
// counted once and nothing is dead-lettered.
func TestConcurrentBatches(t *testing.T) {
	const partitions, perBatch, stock = 4, 8, 8
	f := newFixture(t)
	skus := []string{"A", "B", "C"}
	for _, sku := range skus {
		f.setStock(t, sku, stock)
	}
	consume := f.consumer(t, 5)
	demand := map[string]int64{}
	var wg sync.WaitGroup
	for p := range partitions {
		ms := make([]*messaging.Message, perBatch)
		for j := range ms {
			sku := skus[(p+j)%len(skus)]
			if p%2 == 1 {
				sku = skus[(p+perBatch-j)%len(skus)]
			}
			demand[sku]++
			ms[j] = message(orderCreated(t, orderN(p*100+j), line(sku, 1)), int64(j))
		}
		wg.Go(func() {
			if err := kafka.HandleBatch(context.Background(), consume, msgpg.Batches(f.db), ms, nil); err != nil {
				t.Errorf("partition %d: %v", p, err)
			}
		})
	}
	wg.Wait()

	var reserved int64
	for _, sku := range skus {
		held := min(demand[sku], stock)
		reserved += held
		if got, want := f.stock(t, sku), (inventory.Stock{SKU: sku, Available: stock - held, Reserved: held}); got != want {
			t.Errorf("stock = %+v, want %+v (demand %d)", got, want, demand[sku])
		}
	}
	const orders = partitions * perBatch
	if got := f.count(t, `SELECT count(*) FROM reservations WHERE status = 'RESERVED'`); int64(got) != reserved {
		t.Errorf("%d orders reserved, want %d", got, reserved)
	}
	if got := f.inbox(t); got != orders {
		t.Errorf("inbox rows = %d, want %d", got, orders)
	}
	if got := f.count(t, `SELECT count(*) FROM dead_letters`); got != 0 {
		t.Errorf("%d dead letters, want none", got)
	}
	f.checkDecisions(t, map[inventory.Outcome]int64{inventory.OutcomeFailed: orders - reserved, inventory.OutcomeReserved: reserved})
}

// TestOrderCreatedEveryVersion (issue 21): OrderCreated v1 (upcast by Decode) and v2 (with the
// channel) reserve alike; a version no schema knows is poison and reserves nothing.
func TestOrderCreatedEveryVersion(t *testing.T) {
	tests := []struct {
		name       string
		version    int
		channel    bool
		wantPoison bool
	}{
		{name: "v1", version: 1},
		{name: "v2 with a channel", version: 2, channel: true},
		{name: "v2 without one", version: 2},
		{name: "v3", version: 3, wantPoison: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.setStock(t, "A", 5)
			id := uuid.NewString()
			data := map[string]any{"orderId": id, "customerId": "U1", "items": []item{line("A", 2)},
				"amount": 30000, "currency": "KRW", "paymentToken": "tok_ok"}
			if tt.channel {
				data["channel"] = "app"
			}
			r := sagatest.Event(t, "order", "OrderCreated", tt.version, id, data)
			err := f.deliver(r)
			if tt.wantPoison {
				if !messaging.IsPermanent(err) {
					t.Fatalf("deliver v%d: %v, want poison", tt.version, err)
				}
				if got := f.stock(t, "A"); got.Reserved != 0 {
					t.Errorf("stock %+v after poison", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("deliver v%d: %v", tt.version, err)
			}
			if got := f.stock(t, "A"); got.Available != 3 || got.Reserved != 2 {
				t.Errorf("stock after OrderCreated v%d = %+v, want 3 available, 2 reserved", tt.version, got)
			}
		})
	}
}

// TestStockTransitionsOncePerTransition: StockDepleted when a reservation or a restock takes a
// SKU's available count to 0, StockReplenished when a release or a restock lifts it from 0, each
// under the SKU as aggregate id, in the transaction of the change, and never twice in a row for
// one SKU (no repeat while it stays at 0 or above it), whatever the redeliveries.
func TestStockTransitionsOncePerTransition(t *testing.T) {
	f := newFixture(t)
	f.setStock(t, "A", 3)
	f.setStock(t, "B", 5)
	if got := f.EmittedTypes("A"); len(got) != 0 {
		t.Fatalf("a new SKU above 0 emitted %v, want nothing", got)
	}
	o2, o3 := uuid.NewString(), uuid.NewString()

	// o1 takes A to 0 (and B to 4): A is depleted, in the same transaction as StockReserved.
	c1 := orderCreated(t, o1, line("A", 3), line("B", 1))
	f.mustDeliver(t, c1)
	f.mustDeliver(t, c1) // a redelivery: nothing again
	wantA := []string{inventory.EventStockDepleted}
	if got := f.EmittedTypes("A"); !reflect.DeepEqual(got, wantA) {
		t.Fatalf("A after the reservation: %v, want %v", got, wantA)
	}
	if got := f.EmittedTypes("B"); len(got) != 0 {
		t.Errorf("B, still above 0, emitted %v", got)
	}
	dep := f.Emitted("A")[0]
	if dep.TraceID != c1.Traceparent.TraceID() {
		t.Errorf("StockDepleted trace %s, want the order's %s", dep.TraceID, c1.Traceparent.TraceID())
	}
	if got, want := dataOf(t, dep), map[string]any{"sku": "A"}; !reflect.DeepEqual(got, want) {
		t.Errorf("StockDepleted data = %v, want %v", got, want)
	}

	// o2 finds A short: still at 0, nothing more.
	f.mustDeliver(t, orderCreated(t, o2, line("A", 1)))
	// A restock to 0 while at 0: nothing more.
	f.setStock(t, "A", 0)
	if got := f.EmittedTypes("A"); !reflect.DeepEqual(got, wantA) {
		t.Fatalf("A while it stays at 0: %v, want %v", got, wantA)
	}

	// o1 is canceled: its 3 units come back, A is replenished with 3 available.
	cancel := orderCanceled(t, o1, "PAYMENT_FAILED", line("A", 3), line("B", 1))
	f.mustDeliver(t, cancel)
	f.mustDeliver(t, cancel)
	wantA = append(wantA, inventory.EventStockReplenished)
	if got := f.EmittedTypes("A"); !reflect.DeepEqual(got, wantA) {
		t.Fatalf("A after the release: %v, want %v", got, wantA)
	}
	if got, want := dataOf(t, f.Emitted("A")[1]), map[string]any{"sku": "A", "available": 3.0}; !reflect.DeepEqual(got, want) {
		t.Errorf("StockReplenished data = %v, want %v", got, want)
	}

	// A restock above 0 while above 0: nothing. A restock to 0: depleted; back up: replenished.
	f.setStock(t, "A", 4)
	f.setStock(t, "A", 0)
	f.setStock(t, "A", 2)
	wantA = append(wantA, inventory.EventStockDepleted, inventory.EventStockReplenished)
	if got := f.EmittedTypes("A"); !reflect.DeepEqual(got, wantA) {
		t.Fatalf("A after restocks 4, 0, 2: %v, want %v", got, wantA)
	}

	// o3 takes the last 2 and completes: depleted once by the reservation; the commit moves
	// reserved to sold and leaves available (and so the SKU's state) as it is.
	f.mustDeliver(t, orderCreated(t, o3, line("A", 2)))
	f.mustDeliver(t, orderCompleted(t, o3, line("A", 2)))
	wantA = append(wantA, inventory.EventStockDepleted)
	if got := f.EmittedTypes("A"); !reflect.DeepEqual(got, wantA) {
		t.Fatalf("A after o3: %v, want %v", got, wantA)
	}
	if got, want := f.stock(t, "A"), (inventory.Stock{SKU: "A", Sold: 2}); got != want {
		t.Errorf("stock A = %+v, want %+v", got, want)
	}
	// A new SKU created at 0 is depleted from the start.
	f.setStock(t, "C", 0)
	if got, want := f.EmittedTypes("C"), []string{inventory.EventStockDepleted}; !reflect.DeepEqual(got, want) {
		t.Errorf("C created at 0: %v, want %v", got, want)
	}
	// The order's own events are untouched by the SKU's: still keyed by the order.
	if got, want := f.EmittedTypes(o1), []string{inventory.EventStockReserved, inventory.EventStockReleased}; !reflect.DeepEqual(got, want) {
		t.Errorf("o1's events %v, want %v", got, want)
	}
}

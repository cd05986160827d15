package saga_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/sagatest"
	"outboxsaga.dev/shipping"
	"outboxsaga.dev/shipping/app"
	"outboxsaga.dev/shipping/postgres"
	"outboxsaga.dev/shipping/saga"
)

// One delivery per completed order, whatever comes again, and none for an order that did not
// complete; every OrderCompleted and OrderCreated (whose order it is) is recorded in the inbox, the
// ignored types are not. The same holds when the events come in one batch (one transaction, one
// commit).
func TestOrderEvents(t *testing.T) {
	const scheduled = shipping.EventDeliveryScheduled
	tests := []struct {
		name       string
		events     func(t *testing.T, orderID string) []record
		wantStatus shipping.Status
		wantEvents []string
		wantInbox  int
	}{
		{name: "completed", wantStatus: shipping.StatusPreparing, wantEvents: []string{scheduled}, wantInbox: 1,
			events: func(t *testing.T, id string) []record { return []record{created(t, id), completed(t, id)} }},
		{name: "redelivered", wantStatus: shipping.StatusPreparing, wantEvents: []string{scheduled}, wantInbox: 1,
			events: func(t *testing.T, id string) []record { r := completed(t, id); return []record{r, r, r} }},
		{name: "the same OrderCompleted under a new event id", wantStatus: shipping.StatusPreparing, wantEvents: []string{scheduled}, wantInbox: 2,
			events: func(t *testing.T, id string) []record { return []record{completed(t, id), completed(t, id)} }},
		{name: "canceled", wantStatus: "", wantEvents: nil, wantInbox: 0,
			events: func(t *testing.T, id string) []record { return []record{created(t, id), canceled(t, id)} }},
		{name: "an OrderCanceled after completion (never sent) changes nothing", wantStatus: shipping.StatusPreparing, wantEvents: []string{scheduled}, wantInbox: 1,
			events: func(t *testing.T, id string) []record { return []record{completed(t, id), canceled(t, id)} }},
	}
	for _, tt := range tests {
		for _, batch := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/batch=%v", tt.name, batch), func(t *testing.T) {
				f, id := newFixture(t), uuid.NewString()
				events := tt.events(t, id)
				if batch {
					f.MustDeliverBatch(events...)
					if got := f.count(`SELECT count(DISTINCT xmin::text) FROM processed_events`); got > 1 {
						t.Errorf("the inbox was written by %d transactions, want at most the batch's", got)
					}
				} else {
					f.MustDeliver(events...)
				}
				if got := f.status(id); got != tt.wantStatus {
					t.Errorf("delivery status = %q, want %q", got, tt.wantStatus)
				}
				first := slices.IndexFunc(events, func(r record) bool { return r.Headers["eventType"] == "OrderCompleted" })
				if got := f.emitted(id, events[max(first, 0)].Traceparent); !slices.Equal(got, tt.wantEvents) {
					t.Errorf("emitted %v, want %v", got, tt.wantEvents)
				}
				createdEvents := 0
				for _, r := range events {
					if r.Headers["eventType"] == "OrderCreated" {
						createdEvents++
					}
				}
				if got := f.count(`SELECT count(*) FROM processed_events`); got != tt.wantInbox+createdEvents {
					t.Errorf("inbox rows = %d, want %d (and %d of OrderCreated)", got, tt.wantInbox, createdEvents)
				}
				if got, want := f.count(`SELECT count(*) FROM order_customers WHERE customer_id = 'U1'`), min(createdEvents, 1); got != want {
					t.Errorf("customers recorded = %d, want %d", got, want)
				}
				if got, want := f.count(`SELECT count(*) FROM deliveries`), min(tt.wantInbox, 1); got != want {
					t.Errorf("deliveries = %d, want %d", got, want)
				}
				ignored := fmt.Sprintf(`
					# HELP shipping_completions_ignored_total OrderCompleted events (under a new event id) for an order that has its delivery already.
					# TYPE shipping_completions_ignored_total counter
					shipping_completions_ignored_total %d
				`, max(tt.wantInbox-1, 0))
				if err := testutil.GatherAndCompare(f.reg, strings.NewReader(ignored), "shipping_completions_ignored_total"); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

// DeliveryScheduled carries the order's lines.
func TestDeliveryScheduledCarriesTheItems(t *testing.T) {
	f, id := newFixture(t), uuid.NewString()
	f.MustDeliver(completed(t, id))
	events := pgtest.Emitted(t, f.db, id)
	var data shipping.DeliveryScheduledData
	if err := json.Unmarshal(events[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	d, err := f.deliveries.Get(context.Background(), id)
	want := shipping.DeliveryScheduledData{OrderID: id, DeliveryID: d.ID, Items: []shipping.Item{{SKU: "A100", Qty: 2, UnitPrice: 15000}}}
	if err != nil || !reflect.DeepEqual(data, want) || !reflect.DeepEqual(d.Items, want.Items) {
		t.Errorf("DeliveryScheduled %+v and delivery %+v (%v), want %+v", data, d, err, want)
	}
}

// Poison is Permanent (the consumer dead-letters it without retrying) and writes nothing, not
// even the inbox row.
func TestPoisonIsPermanentAndWritesNothing(t *testing.T) {
	id := uuid.NewString()
	tests := map[string]func(t *testing.T) record{
		"data names another order": func(t *testing.T) record {
			r := completed(t, id)
			r.Value = []byte(strings.Replace(string(r.Value), `"orderId":"`+id, `"orderId":"`+uuid.NewString(), 1))
			return r
		},
		"unknown event type": func(t *testing.T) record { return orderEvent(t, "OrderShipped", id, map[string]any{"orderId": id}) },
		"undecodable":        func(t *testing.T) record { r := completed(t, id); r.Value = []byte("{not json"); return r },
		"known, not for us": func(t *testing.T) record {
			return event(t, "inventory", "StockReleased", id, map[string]any{"orderId": id, "items": items})
		},
		"an unknown version": func(t *testing.T) record {
			r := completed(t, id)
			r.Value = []byte(strings.Replace(string(r.Value), `"eventVersion":1`, `"eventVersion":2`, 1))
			return r
		},
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			if err := f.Deliver(r(t)); !messaging.IsPermanent(err) {
				t.Fatalf("deliver() error = %v, want a Permanent error", err)
			}
			if got := f.count(`SELECT (SELECT count(*) FROM processed_events) + (SELECT count(*) FROM deliveries) + (SELECT count(*) FROM outbox_seen)`); got != 0 {
				t.Errorf("inbox rows, deliveries and events = %d, want none", got)
			}
		})
	}
}

// fixture is a migrated test database with a captured outbox and the saga's Router behind the
// consumer's decoding (sagatest.Harness), its carrier moving a delivery an hour after the last
// step (steps makes one with another pace).
type fixture struct {
	*sagatest.Harness
	t          *testing.T
	db         *sql.DB
	deliveries *postgres.Deliveries
	metrics    *app.Metrics
	reg        *prometheus.Registry
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := sagatest.Open(t, "shipping", postgres.Migrations)
	f := &fixture{t: t, db: db, deliveries: postgres.NewDeliveries(db), reg: prometheus.NewRegistry()}
	f.metrics = app.NewMetrics(f.reg)
	f.Harness = sagatest.New(t, db, saga.New(db, pgtest.MustOutbox(t), f.steps(time.Hour)).Router())
	return f
}

// steps returns the use cases on the fixture's database, the carrier moving a delivery every.
func (f *fixture) steps(every time.Duration) *app.App {
	return app.New(f.db, f.deliveries, pgtest.MustOutbox(f.t), f.metrics, zerolog.Nop(), every)
}

// record is the Kafka record of an event.
type record = sagatest.Record

// orderEvent is an order event on order-events, in a trace of its own.
func orderEvent(t *testing.T, eventType, orderID string, data map[string]any) record {
	return event(t, "order", eventType, orderID, data)
}

// event is an event of aggregateType on its topic.
func event(t *testing.T, aggregateType, eventType, orderID string, data map[string]any) record {
	t.Helper()
	return sagatest.Event(t, aggregateType, eventType, 1, orderID, data)
}

var items = []any{map[string]any{"sku": "A100", "qty": 2, "unitPrice": 15000}}

// completed, created and canceled build the order events of orderID; each call is a new event id.
func completed(t *testing.T, orderID string) record {
	return orderEvent(t, "OrderCompleted", orderID, map[string]any{"orderId": orderID, "items": items, "amount": 30000, "currency": "KRW"})
}

func created(t *testing.T, orderID string) record {
	return orderEvent(t, "OrderCreated", orderID, map[string]any{"orderId": orderID, "customerId": "U1", "items": items,
		"amount": 30000, "currency": "KRW", "paymentToken": "tok_ok"})
}

func canceled(t *testing.T, orderID string) record {
	return orderEvent(t, "OrderCanceled", orderID, map[string]any{"orderId": orderID, "reason": "TIMEOUT", "items": items})
}

// status returns the status of orderID's delivery, "" when it has none.
func (f *fixture) status(orderID string) shipping.Status {
	f.t.Helper()
	d, err := f.deliveries.Get(context.Background(), orderID)
	if fault.Code(err) == fault.NotFound {
		return ""
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return d.Status
}

// emitted returns the types of the events written for orderID, in order, after checking each
// (pgtest.Emitted: schema, row, trace) goes to shipping-events, in trace, and names the order's
// one delivery.
func (f *fixture) emitted(orderID string, trace messaging.Traceparent) []string {
	f.t.Helper()
	events := f.Emitted(orderID)
	for _, e := range events {
		var data shipping.StepData
		if err := json.Unmarshal(e.Data, &data); err != nil {
			f.t.Fatal(err)
		}
		d, err := f.deliveries.Get(context.Background(), orderID)
		if err != nil || data.OrderID != orderID || data.DeliveryID != d.ID {
			f.t.Errorf("%s names order %s, delivery %s; want %s, %s (%v)", e.EventType, data.OrderID, data.DeliveryID, orderID, d.ID, err)
		}
		if e.AggregateType != shipping.AggregateType || e.TraceID != trace.TraceID() || e.Traceparent.SpanID() == trace.SpanID() {
			f.t.Errorf("%s of %s in trace %s: want on %s, a new span in the order's trace %s",
				e.EventType, e.AggregateType, e.Traceparent, messaging.TopicOf(shipping.AggregateType), trace)
		}
	}
	return pgtest.Types(events)
}

func (f *fixture) count(query string, args ...any) int {
	return pgtest.Count(f.t, f.db, query, args...)
}

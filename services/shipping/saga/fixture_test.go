package saga_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/messaging/kafka"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/schemas"
	"outboxsaga.dev/shipping"
	"outboxsaga.dev/shipping/postgres"
	"outboxsaga.dev/shipping/saga"
)

// fixture is a migrated test database with a captured outbox, the saga as the service wires it
// and the handler chain its consumer runs, minus retry and dead letters: decode (schema
// validation), then the Router.
type fixture struct {
	t          *testing.T
	db         *sql.DB
	handle     messaging.Handler
	deliveries *postgres.Deliveries
	metrics    *saga.Metrics
	reg        *prometheus.Registry
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := pgtest.MustOpenTestDB(t)
	db.SetMaxOpenConns(20) // every test database together has about 100 connections
	if err := msgpg.MigrateService(context.Background(), db, "shipping", postgres.Migrations); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	pgtest.CaptureOutbox(t, db)
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: db, deliveries: postgres.NewDeliveries(db), reg: prometheus.NewRegistry()}
	f.metrics = saga.NewMetrics(f.reg)
	f.handle = messaging.Chain(f.steps(time.Hour).Router().Dispatch, kafka.Decode(v))
	return f
}

// steps returns the saga on the fixture's database, its carrier moving a delivery every.
func (f *fixture) steps(every time.Duration) *saga.Steps {
	return saga.New(f.db, f.deliveries, pgtest.MustOutbox(f.t), f.metrics, zerolog.Nop(), every)
}

// record is an order event as Debezium's outbox router puts it on order-events, in a trace of
// its own.
type record struct {
	messaging.Record
	tp messaging.Traceparent
}

func orderEvent(t *testing.T, eventType, orderID string, data map[string]any) record {
	return event(t, "order", eventType, orderID, data)
}

// event is an event of aggregateType on order-events.
func event(t *testing.T, aggregateType, eventType, orderID string, data map[string]any) record {
	t.Helper()
	tp := messaging.NewTraceparent()
	env, err := messaging.NewEnvelope(aggregateType, orderID, eventType, 1, data, tp)
	value, _ := json.Marshal(env) // an envelope always marshals
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{"id": env.EventID, "eventType": eventType, "traceparent": tp.String()}
	return record{Record: messaging.Record{Topic: messaging.TopicOrder, Key: orderID, Value: value, Headers: headers}, tp: tp}
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

// deliver hands r to the chain as the consumer does: a new, undecoded message each time.
func (f *fixture) deliver(r record) error {
	return f.handle(context.Background(), &messaging.Message{Record: r.Record, Traceparent: r.tp})
}

func (f *fixture) mustDeliver(rs ...record) {
	f.t.Helper()
	for _, r := range rs {
		if err := f.deliver(r); err != nil {
			f.t.Fatalf("deliver %s: %v", r.Headers["eventType"], err)
		}
	}
}

// mustDeliverBatch hands rs to the chain as a consumer with a batch size does: one batch
// (kafka.HandleBatch over msgpg.Batches), each record a new, undecoded message at its own offset.
func (f *fixture) mustDeliverBatch(rs ...record) {
	f.t.Helper()
	ms := make([]*messaging.Message, len(rs))
	for i, r := range rs {
		ms[i] = &messaging.Message{Record: r.Record, Traceparent: r.tp}
		ms[i].Offset = int64(i)
	}
	if err := kafka.HandleBatch(context.Background(), f.handle, msgpg.Batches(f.db), ms, nil); err != nil {
		f.t.Fatalf("deliver a batch of %d: %v", len(rs), err)
	}
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
	events := pgtest.Emitted(f.t, f.db, orderID)
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

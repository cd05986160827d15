package saga_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/kafka"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/sagatest"
	"outboxsaga.dev/notification"
	"outboxsaga.dev/notification/app"
	"outboxsaga.dev/notification/postgres"
	"outboxsaga.dev/notification/saga"
	"outboxsaga.dev/notification/webhook"
	"outboxsaga.dev/webhooksink/httpapi"
	"outboxsaga.dev/webhooksink/sinktest"
)

// TestNotify: each event gives exactly its notifications, under the keys <eventId>:<kind>, with
// the body of notification.For; the other events of the topics none. A redelivered event is not
// notified again; one redelivered after a crash before its mark is POSTed again under the same
// key (the webhook counts a second delivery) and recorded once.
func TestNotify(t *testing.T) {
	f := newFixture(t, httpapi.Config{})
	order := uuid.NewString()
	for _, tc := range []struct {
		record record
		kinds  []string
	}{
		{event(t, "order", "OrderCreated", order, map[string]any{"orderId": order, "customerId": "U1", "items": items,
			"amount": 15000, "currency": "KRW", "paymentToken": "tok_ok"}), nil},
		{event(t, "order", "OrderCompleted", order, map[string]any{"orderId": order, "items": items, "amount": 15000, "currency": "KRW"}), []string{"customer"}},
		{event(t, "order", "OrderCanceled", order, map[string]any{"orderId": order, "reason": "OUT_OF_STOCK", "items": items}), []string{"customer"}},
		{event(t, "order", "OrderCanceled", order, map[string]any{"orderId": order, "reason": "TIMEOUT", "items": items}), []string{"customer", "alert"}},
		{event(t, "shipping", "DeliveryScheduled", order, map[string]any{"orderId": order, "deliveryId": uuid.NewString(), "items": items}), nil},
		{event(t, "shipping", "DeliveryShipped", order, map[string]any{"orderId": order, "deliveryId": uuid.NewString()}), []string{"customer"}},
		{event(t, "shipping", "DeliveryDelivered", order, map[string]any{"orderId": order, "deliveryId": uuid.NewString()}), nil},
		{event(t, "dead-letter", "DeadLettered", order, map[string]any{"service": "payment", "topic": "inventory-events", "partition": 0,
			"offset": 7, "key": order, "eventId": uuid.NewString(), "eventType": "StockReserved", "error": "boom", "attempts": 5}), []string{"alert"}},
	} {
		env := tc.record.Envelope
		before := len(f.sink.Keys())
		if err := f.replay(context.Background(), tc.record.Message()); err != nil {
			t.Fatalf("%s: %v", env.EventType, err)
		}
		var want []string
		for _, k := range tc.kinds {
			want = append(want, env.EventID+":"+k)
		}
		if got := f.sink.Keys()[before:]; !slices.Equal(got, want) {
			t.Errorf("%s: the webhook got %q, want %q", env.EventType, got, want)
		}
	}
	// What arrived is what notification.For says, each once, and what the service recorded.
	received := f.sink.Received(order)
	sent, err := f.sent.List(context.Background(), order, 100)
	if err != nil || len(received) != 6 || len(sent) != 6 {
		t.Fatalf("received %d, recorded %d (%v), want 6 notifications", len(received), len(sent), err)
	}
	for i, e := range received {
		var body notification.Notification
		if err := json.Unmarshal(e.Body, &body); err != nil || e.Deliveries != 1 || e.Key != body.Key() || body != sent[i].Notification || sent[i].Key != e.Key {
			t.Errorf("received %s ×%d %s (%v), recorded %+v", e.Key, e.Deliveries, e.Body, err, sent[i])
		}
	}
	completed := event(t, "order", "OrderCompleted", order, map[string]any{"orderId": order, "items": items, "amount": 15000, "currency": "KRW"})
	for range 2 {
		if err := f.consume(context.Background(), completed.Message()); err != nil {
			t.Fatal(err)
		}
	}
	key := completed.Envelope.EventID + ":customer"
	if got := f.sink.Received(order); got[len(got)-1].Key != key || got[len(got)-1].Deliveries != 1 {
		t.Errorf("a redelivery: %+v, want %s delivered once", got[len(got)-1], key)
	}
	// A crash between the POST and the mark: the inbox row never committed.
	if _, err := f.db.Exec(`DELETE FROM processed_events WHERE event_id = $1`, completed.Envelope.EventID); err != nil {
		t.Fatal(err)
	}
	if err := f.consume(context.Background(), completed.Message()); err != nil {
		t.Fatal(err)
	}
	if got := f.sink.Received(order); got[len(got)-1].Key != key || got[len(got)-1].Deliveries != 2 {
		t.Errorf("after a crash before the mark: %+v, want %s delivered twice", got[len(got)-1], key)
	}
	if n := pgtest.Count(t, f.db, `SELECT count(*) FROM notifications WHERE key = $1`, key); n != 1 {
		t.Errorf("%s recorded %d times, want once", key, n)
	}
	if got := counter(t, f.reg, "notification_sent_total"); got != 8 {
		t.Errorf("notification_sent_total = %v, want 8 (6, the new event, its re-mark after the crash)", got)
	}
}

// TestWebhookDown: while the webhook does not answer, the step fails with an outage (never
// poison) and marks nothing, also for an alert the loop guard watches; the consumer keeps the
// event until the webhook is back and then notifies it once, with no dead letter.
func TestWebhookDown(t *testing.T) {
	f := newFixture(t, httpapi.Config{})
	f.sink.Stop()
	order := uuid.NewString()
	canceled := event(t, "order", "OrderCanceled", order, map[string]any{"orderId": order, "reason": "TIMEOUT", "items": items})
	own := event(t, "dead-letter", "DeadLettered", order, map[string]any{"service": "notification", "topic": "dead-letter-events",
		"partition": 0, "offset": 3, "key": order, "eventId": uuid.NewString(), "eventType": "DeadLettered", "error": "x", "attempts": 1})
	for _, r := range []record{canceled, own} {
		if err := f.replay(context.Background(), r.Message()); !messaging.IsOutage(err) || messaging.IsPermanent(err) {
			t.Errorf("with the webhook down: %v, want an outage", err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- f.consume(context.Background(), canceled.Message()) }()
	time.Sleep(500 * time.Millisecond) // more than the consumer's 2 attempts take
	f.sink.Restart()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the consumer did not deliver within 20 s of the webhook's return")
	}
	got := f.sink.Received(order)
	if len(got) != 2 || got[0].Key != canceled.Envelope.EventID+":customer" || got[1].Key != canceled.Envelope.EventID+":alert" {
		t.Errorf("after the webhook came back: %+v, want the customer's and the alert", got)
	}
	if n := pgtest.Count(t, f.db, `SELECT count(*) FROM dead_letters`); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
	if n := pgtest.Count(t, f.db, `SELECT count(*) FROM processed_events WHERE event_id = $1`, canceled.Envelope.EventID); n != 1 {
		t.Errorf("the event is not marked processed")
	}
}

// TestWebhookRejects: a 4xx about the request is a bug of ours: the event is dead-lettered at
// once, and its DeadLettered (emitted through the outbox) comes back on dead-letter-events. When
// the alert on that fails the same way, it is dead-lettered in turn, once; the alert on that
// second one is this service's own dead letter of dead-letter-events: it fails too, and the loop
// guard drops it instead of making a third.
func TestWebhookRejects(t *testing.T) {
	f := newFixture(t, httpapi.Config{FailFirst: 1 << 30, FailStatus: 400})
	order := uuid.NewString()
	r := event(t, "order", "OrderCompleted", order, map[string]any{"orderId": order, "items": items, "amount": 15000, "currency": "KRW"})
	if err := f.replay(context.Background(), r.Message()); !messaging.IsPermanent(err) || messaging.IsOutage(err) || !errors.Is(err, webhook.ErrRejected) {
		t.Fatalf("a 400: %v, want poison", err)
	}
	// 1: the OrderCompleted is dead-lettered; 2: the alert on its DeadLettered is refused, so
	// that is dead-lettered too; 3: the alert on the second, our own, is refused: dropped.
	for round := 1; round <= 3; round++ {
		if err := f.consume(context.Background(), r.Message()); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		emitted := pgtest.Emitted(t, f.db, order)
		if len(emitted) != min(round, 2) || pgtest.Types(emitted)[0] != "DeadLettered" {
			t.Fatalf("round %d: emitted %q, want %d DeadLettered", round, pgtest.Types(emitted), min(round, 2))
		}
		last := emitted[len(emitted)-1]
		r = record{Record: messaging.Record{Topic: messaging.TopicDeadLetter, Offset: int64(round), Key: last.AggregateID, Value: last.Payload}, Envelope: last.Envelope}
	}
	var topics string
	if err := f.db.QueryRow(`SELECT string_agg(service || '/' || topic, ' ' ORDER BY id) FROM dead_letters`).Scan(&topics); err != nil ||
		topics != "notification/order-events notification/dead-letter-events" {
		t.Errorf("dead letters of %q (%v), want one of order-events and one of dead-letter-events", topics, err)
	}
	if got := counter(t, f.reg, "notification_loop_guard_dropped_total"); got != 1 {
		t.Errorf("loop guard drops = %v, want 1", got)
	}
}

// TestNotifyNeverJoinsABatch: Notify POSTs to the webhook before its transaction, so inside a
// batch the chain refuses it before it runs (nothing POSTed). A consumer with a batch size
// (kafka.HandleBatch) then batches the ignored events around it and runs it on its own: each
// notification reaches the webhook once.
func TestNotifyNeverJoinsABatch(t *testing.T) {
	f := newFixture(t, httpapi.Config{})
	order := uuid.NewString()
	delivery := map[string]any{"orderId": order, "deliveryId": uuid.NewString()}
	completed := event(t, "order", "OrderCompleted", order, map[string]any{"orderId": order, "items": items, "amount": 15000, "currency": "KRW"})
	inBatch, _ := messaging.WithBatch(context.Background())
	if err := f.consume(inBatch, completed.Message()); !errors.Is(err, messaging.ErrNotBatchable) || len(f.sink.Keys()) != 0 {
		t.Fatalf("Notify in a batch: %v, the webhook got %q; want ErrNotBatchable and nothing", err, f.sink.Keys())
	}

	shipped := event(t, "shipping", "DeliveryShipped", order, delivery)
	records := []record{
		event(t, "shipping", "DeliveryDelivered", order, delivery), completed,
		event(t, "shipping", "DeliveryDelivered", order, delivery), event(t, "shipping", "DeliveryDelivered", order, delivery), shipped,
	}
	ms := make([]*messaging.Message, len(records))
	for i, r := range records {
		ms[i] = r.Message()
	}
	if err := kafka.HandleBatch(context.Background(), f.consume, msgpg.Batches(f.db), ms, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{completed.Envelope.EventID + ":customer", shipped.Envelope.EventID + ":customer"}
	if got := f.sink.Keys(); !slices.Equal(got, want) {
		t.Errorf("the webhook got %q, want %q", got, want)
	}
}

// fixture is a migrated test database, the webhook sink in-process, and the two chains the
// service runs over its Router (sagatest.Harness.Consumer): consume (retry, dead letters) and
// replay (neither: a failure comes back at once).
type fixture struct {
	*sagatest.Harness
	db              *sql.DB
	sink            *sinktest.Sink
	sent            *postgres.SentNotifications
	reg             *prometheus.Registry
	consume, replay messaging.Handler
}

func newFixture(t *testing.T, sink httpapi.Config) *fixture {
	t.Helper()
	db := sagatest.Open(t, notification.Service, postgres.Migrations)
	f := &fixture{db: db, sink: sinktest.Start(t, sink), sent: postgres.NewSentNotifications(db), reg: prometheus.NewRegistry()}
	hook, err := webhook.New(webhook.Config{URL: f.sink.URL + "/hooks", Secret: sinktest.Secret, Timeout: time.Second, Attempts: 3, Backoff: time.Millisecond}, f.reg)
	if err != nil {
		t.Fatal(err)
	}
	f.Harness = sagatest.New(t, db, saga.New(app.New(db, f.sent, hook, f.reg), f.reg).Router())
	f.consume, f.replay = f.Consumer(notification.Service, 2)
	return f
}

// record is the Kafka record of an event.
type record = sagatest.Record

// event is the record of a new event of aggregateType about key, on its topic.
func event(t *testing.T, aggregateType, eventType, key string, data any) record {
	t.Helper()
	return sagatest.Event(t, aggregateType, eventType, 1, key, data)
}

var items = []map[string]any{{"sku": "A100", "qty": 1, "unitPrice": 15000}}

// counter is the sum of the counter name's series in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range families {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

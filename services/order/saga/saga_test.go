package saga_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/kafka"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/sagatest"
	"outboxsaga.dev/order"
	"outboxsaga.dev/order/app"
	"outboxsaga.dev/order/postgres"
	"outboxsaga.dev/order/postgres/ordertest"
	"outboxsaga.dev/order/saga"
)

// env is one test's database, repository and saga, wired as in wiring.Run.
type env struct {
	t       *testing.T
	db      *sql.DB
	orders  *postgres.Orders
	events  *postgres.Events
	app     *app.App
	steps   *saga.Steps
	metrics *saga.Metrics
	reg     *prometheus.Registry
	h       *sagatest.Harness
	deliver messaging.Handler
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := sagatest.Open(t, "order", postgres.Migrations)
	ordertest.CaptureEvents(t, db)
	reg := prometheus.NewRegistry()
	metrics := saga.NewMetrics(reg)
	orders := postgres.NewOrders(db)
	events := postgres.NewEvents(db, pgtest.MustOutbox(t), nil)
	application := app.New(app.Config{DB: db, Orders: orders, Events: events, Prices: postgres.NewPrices(db)})
	steps := saga.New(db, application, metrics)
	// What the consumer runs for each record, minus retry, dead letters, logs and metrics.
	h := sagatest.New(t, db, steps.Router())
	return &env{
		t: t, db: db, orders: orders, events: events, app: application, steps: steps, metrics: metrics, reg: reg,
		h: h, deliver: h.Handler(),
	}
}

// place stores a new pending order as POST /orders does, with its OrderCreated event.
func (e *env) place(createdAt time.Time, deadline time.Duration) order.Order {
	e.t.Helper()
	return ordertest.Place(e.t, e.db, e.orders, e.events, createdAt, deadline)
}

// setStatus forces o into status (for late-event tests).
func (e *env) setStatus(o order.Order, status order.Status, reason order.Reason) {
	e.t.Helper()
	if _, err := e.db.Exec(`UPDATE orders SET status = $2, reason = $3 WHERE id = $1`, o.ID, status, reason); err != nil {
		e.t.Fatal(err)
	}
}

// record builds the Kafka record another service's outbox would produce for o, as the consumer
// hands it to its handler chain: raw value, key, headers and the traceparent from the headers.
func record(t *testing.T, o order.Order, eventType string) *messaging.Message {
	t.Helper()
	topic, aggregateType := messaging.TopicInventory, "inventory"
	id := o.ID.String()
	var data any
	switch eventType {
	case "StockReserved":
		data = map[string]any{"orderId": id, "items": o.Items, "amount": o.Amount, "currency": o.Currency, "paymentToken": o.PaymentToken}
	case "StockReservationFailed":
		data = map[string]any{"orderId": id, "reason": "OUT_OF_STOCK", "skus": []string{"A100"}}
	case "StockReleased", "StockCommitted":
		data = map[string]any{"orderId": id, "items": o.Items}
	case "PaymentAuthorized", "PaymentVoided":
		topic, aggregateType = messaging.TopicPayment, "payment"
		data = map[string]any{"orderId": id, "amount": o.Amount, "currency": o.Currency, "pgTxnId": "pg_1"}
	case "PaymentFailed":
		topic, aggregateType = messaging.TopicPayment, "payment"
		data = map[string]any{"orderId": id, "reason": "CARD_DECLINED", "amount": o.Amount, "currency": o.Currency}
	case "DeliveryScheduled":
		topic, aggregateType = messaging.TopicShipping, "shipping"
		data = map[string]any{"orderId": id, "deliveryId": deliveryID(o), "items": o.Items}
	case "DeliveryShipped", "DeliveryDelivered":
		topic, aggregateType = messaging.TopicShipping, "shipping"
		data = map[string]any{"orderId": id, "deliveryId": deliveryID(o)}
	default:
		t.Fatalf("no test record for %s", eventType)
	}
	tp, err := messaging.NewTraceparentIn(o.TraceID)
	if err != nil {
		t.Fatal(err)
	}
	return rawRecord(t, topic, aggregateType, id, eventType, data, tp)
}

// deliveryID is the id the shipping service gave o's delivery (derived from o's, for the tests).
func deliveryID(o order.Order) string {
	return uuid.NewSHA1(o.ID, []byte("delivery")).String()
}

func rawRecord(t *testing.T, topic, aggregateType, key, eventType string, data any, tp messaging.Traceparent) *messaging.Message {
	t.Helper()
	e, err := messaging.NewEnvelope(aggregateType, key, eventType, 1, data, tp)
	if err != nil {
		t.Fatal(err)
	}
	value, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return &messaging.Message{
		Traceparent: tp,
		Record:      messaging.Record{Topic: topic, Partition: 0, Offset: 42, Key: key, Value: value, Headers: map[string]string{"id": e.EventID, "eventType": eventType, "traceparent": tp.String()}},
	}
}

// redeliver returns the same Kafka record again, undecoded, as after a crash before the offset
// commit.
func redeliver(m *messaging.Message) *messaging.Message {
	return &messaging.Message{
		Traceparent: m.Traceparent,
		Record:      messaging.Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Headers: m.Headers, Value: m.Value},
	}
}

// outbox returns the events the order emitted (its event store, captured) for order id, oldest
// first, each checked (sagatest: schema, row, trace).
func (e *env) outbox(id uuid.UUID) []pgtest.Event { return e.h.Emitted(id.String()) }

func (e *env) count(query string, args ...any) int { return pgtest.Count(e.t, e.db, query, args...) }

func (e *env) get(id uuid.UUID) order.Order {
	e.t.Helper()
	o, err := e.orders.Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

func (e *env) timelineTypes(id uuid.UUID) []string {
	e.t.Helper()
	entries, err := e.orders.Timeline(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	var types []string
	for _, en := range entries {
		types = append(types, en.EventType+"@"+en.Source)
	}
	return types
}

func TestSteps(t *testing.T) {
	tests := []struct {
		event      string
		wantStatus order.Status
		wantReason order.Reason
		wantEmit   string // "" = nothing emitted
	}{
		{event: "StockReservationFailed", wantStatus: order.StatusCanceled, wantReason: order.ReasonOutOfStock, wantEmit: order.EventOrderCanceled},
		{event: "PaymentAuthorized", wantStatus: order.StatusCompleted, wantEmit: order.EventOrderCompleted},
		{event: "PaymentFailed", wantStatus: order.StatusCanceled, wantReason: order.ReasonPaymentFailed, wantEmit: order.EventOrderCanceled},
		{event: "StockReserved", wantStatus: order.StatusPending},
		{event: "StockReleased", wantStatus: order.StatusPending},
		{event: "StockCommitted", wantStatus: order.StatusPending},
		{event: "PaymentVoided", wantStatus: order.StatusPending},
	}
	for _, tt := range tests {
		t.Run(tt.event, func(t *testing.T) {
			e := newEnv(t)
			o := e.place(time.Now(), time.Minute)
			m := record(t, o, tt.event)
			if err := e.deliver(context.Background(), m); err != nil {
				t.Fatalf("deliver %s: %v", tt.event, err)
			}

			got := e.get(o.ID)
			if got.Status != tt.wantStatus || got.Reason != tt.wantReason {
				t.Fatalf("order is %s %q, want %s %q", got.Status, got.Reason, tt.wantStatus, tt.wantReason)
			}
			if n := e.count(`SELECT count(*) FROM processed_events WHERE event_id = $1 AND topic = $2`, m.EventID, m.Topic); n != 1 {
				t.Fatalf("inbox has %d rows for the event, want 1", n)
			}
			wantTimeline := []string{"OrderCreated@order-service", tt.event + "@" + m.Topic}
			out := e.outbox(o.ID)
			if tt.wantEmit == "" {
				if len(out) != 1 {
					t.Fatalf("outbox has %d events, want only OrderCreated", len(out))
				}
			} else {
				wantTimeline = append(wantTimeline, tt.wantEmit+"@order-service")
				if len(out) != 2 || out[1].EventType != tt.wantEmit {
					t.Fatalf("outbox = %+v, want OrderCreated then %s", out, tt.wantEmit)
				}
				em := out[1]
				if em.AggregateType != "order" || em.AggregateID != o.ID.String() || em.TraceID != o.TraceID {
					t.Fatalf("emitted %+v: want aggregate order/%s in trace %s", em, o.ID, o.TraceID)
				}
				if tp := em.Traceparent; tp.TraceID() != o.TraceID || tp.SpanID() == m.Traceparent.SpanID() {
					t.Fatalf("emitted traceparent %q: want a child span of %s", em.Traceparent, m.Traceparent)
				}
				var data struct {
					Reason string `json:"reason"`
				}
				_ = json.Unmarshal(em.Data, &data)
				if data.Reason != string(tt.wantReason) {
					t.Fatalf("emitted reason %q, want %q", data.Reason, tt.wantReason)
				}
			}
			if got := e.timelineTypes(o.ID); !slices.Equal(got, wantTimeline) {
				t.Fatalf("timeline = %v, want %v", got, wantTimeline)
			}
		})
	}
}

func TestRedeliveryChangesNothing(t *testing.T) {
	for _, event := range []string{"PaymentAuthorized", "PaymentFailed", "StockReservationFailed", "StockReserved"} {
		t.Run(event, func(t *testing.T) {
			e := newEnv(t)
			o := e.place(time.Now(), time.Minute)
			m := record(t, o, event)
			if err := e.deliver(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			before := e.get(o.ID)
			snapshot := func() [3]int {
				return [3]int{
					e.count(`SELECT count(*) FROM outbox_seen`),
					e.count(`SELECT count(*) FROM order_timeline`),
					e.count(`SELECT count(*) FROM processed_events`),
				}
			}
			want := snapshot()
			for range 3 {
				if err := e.deliver(context.Background(), redeliver(m)); err != nil {
					t.Fatalf("redelivery: %v", err)
				}
			}
			if got := snapshot(); got != want {
				t.Fatalf("after redelivery (outbox, timeline, inbox) = %v, want %v", got, want)
			}
			if after := e.get(o.ID); after.Status != before.Status || !after.UpdatedAt.Equal(before.UpdatedAt) {
				t.Fatalf("redelivery moved the order: %+v → %+v", before, after)
			}
		})
	}
}

func TestLateEventsNeverMoveATerminalOrder(t *testing.T) {
	tests := []struct {
		name   string
		status order.Status
		reason order.Reason
		event  string
	}{
		{name: "payment failed after completed", status: order.StatusCompleted, event: "PaymentFailed"},
		{name: "out of stock after completed", status: order.StatusCompleted, event: "StockReservationFailed"},
		{name: "authorized after timeout", status: order.StatusCanceled, reason: order.ReasonTimeout, event: "PaymentAuthorized"},
		{name: "authorized after out of stock", status: order.StatusCanceled, reason: order.ReasonOutOfStock, event: "PaymentAuthorized"},
		{name: "payment failed after timeout", status: order.StatusCanceled, reason: order.ReasonTimeout, event: "PaymentFailed"},
		{name: "second out of stock", status: order.StatusCanceled, reason: order.ReasonOutOfStock, event: "StockReservationFailed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			o := e.place(time.Now(), time.Minute)
			e.setStatus(o, tt.status, tt.reason)
			m := record(t, o, tt.event)
			if err := e.deliver(context.Background(), m); err != nil {
				t.Fatalf("deliver: %v", err)
			}
			got := e.get(o.ID)
			if got.Status != tt.status || got.Reason != tt.reason {
				t.Fatalf("order is %s %q, want it to stay %s %q", got.Status, got.Reason, tt.status, tt.reason)
			}
			if out := e.outbox(o.ID); len(out) != 1 {
				t.Fatalf("a late event emitted %d events", len(out)-1)
			}
			// Recorded, though ignored: the timeline shows what arrived.
			want := []string{"OrderCreated@order-service", tt.event + "@" + m.Topic}
			if got := e.timelineTypes(o.ID); !slices.Equal(got, want) {
				t.Fatalf("timeline = %v, want %v", got, want)
			}
			if n := testutil.CollectAndCount(e.reg, "order_saga_outcomes_total"); n != 0 {
				t.Fatalf("an ignored event was counted as an outcome (%d series)", n)
			}
		})
	}
}

func TestPoisonMessages(t *testing.T) {
	e := newEnv(t)
	o := e.place(time.Now(), time.Minute)
	unknown := o
	unknown.ID = uuid.New()
	tp, _ := messaging.NewTraceparentIn(o.TraceID)

	tests := []struct {
		name    string
		m       *messaging.Message
		wantErr error // also wrapped; nil = any error
	}{
		{name: "order id is no uuid", m: rawRecord(t, messaging.TopicPayment, "payment", "o-1", "PaymentAuthorized",
			map[string]any{"orderId": "o-1", "amount": 1, "currency": "KRW", "pgTxnId": "pg"}, tp)},
		// The order's own terms: only the key contradicts the data (the Router's Key).
		{name: "key is not the order id", m: rawRecord(t, messaging.TopicPayment, "payment", uuid.NewString(), "PaymentAuthorized",
			map[string]any{"orderId": o.ID.String(), "amount": o.Amount, "currency": o.Currency, "pgTxnId": "pg"}, tp)},
		{name: "event type not consumed here", m: rawRecord(t, "order-events", "order", o.ID.String(), "OrderCompleted",
			map[string]any{"orderId": o.ID.String(), "items": o.Items, "amount": 1, "currency": "KRW"}, tp), wantErr: messaging.ErrNoRoute},
		{name: "schema violation", m: rawRecord(t, messaging.TopicPayment, "payment", o.ID.String(), "PaymentFailed",
			map[string]any{"orderId": o.ID.String(), "reason": "BAD_LUCK", "amount": 1, "currency": "KRW"}, tp)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.deliver(context.Background(), tt.m)
			if !messaging.IsPermanent(err) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("deliver() = %v, want a Permanent error (%v)", err, tt.wantErr)
			}
		})
	}
	// An event of an order not visible here is retried (the order's commit may not be visible yet
	// though its WAL was decoded): an error, but not Permanent; Retry dead-letters it when its
	// attempts are spent.
	for _, m := range []*messaging.Message{record(t, unknown, "PaymentAuthorized"), record(t, unknown, "StockReserved")} {
		err := e.deliver(context.Background(), m)
		if err == nil || messaging.IsPermanent(err) || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("%s of an unknown order: %v, want a retryable not-found error", m.EventType, err)
		}
	}
	if n := e.count(`SELECT count(*) FROM processed_events`); n != 0 {
		t.Fatalf("poison left %d inbox rows, want 0 (rolled back, to be dead-lettered)", n)
	}
	if n := e.count(`SELECT count(*) FROM order_timeline`); n != 1 {
		t.Fatalf("poison left timeline rows: %d, want only OrderCreated", n)
	}
	if got := e.get(o.ID); got.Status != order.StatusPending {
		t.Fatalf("poison moved the order to %s", got.Status)
	}
}

// TestDeliveryMovesForwardOnly follows a completed order's delivery: every delivery event joins
// the timeline, and one that is late or replayed under a new event id never moves it back.
// TestConcurrentWriteIsRetried: another writer appended the order's next event first (here
// without moving the projection, as a writer that does not lock would). The step's append then
// conflicts (order.CodeConcurrentWrite): a request answers 409, but a consumer must retry, not
// dead-letter, though the Router's mapping makes other conflicts poison.
func TestConcurrentWriteIsRetried(t *testing.T) {
	e := newEnv(t)
	o := e.place(time.Now(), time.Minute)
	err := msgpg.WithTx(context.Background(), e.db, func(tx *sql.Tx) error {
		scratch := o
		ev, _ := scratch.Cancel(order.ReasonTimeout, time.Now())
		d, err := order.Decide(o, messaging.NewTraceparent(), ev, order.EventVersion, time.Now(), order.Meta{}, nil)
		if err != nil {
			return err
		}
		return e.events.Append(context.Background(), tx, d)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = e.deliver(context.Background(), record(t, o, "PaymentAuthorized"))
	if err == nil || messaging.IsPermanent(err) || !strings.Contains(err.Error(), "changed meanwhile") {
		t.Fatalf("deliver = %v, want a retryable concurrent write", err)
	}
	if n := e.count(`SELECT count(*) FROM processed_events`); n != 0 {
		t.Fatalf("the conflicting step left %d inbox rows, want 0 (rolled back)", n)
	}
}

func TestDeliveryMovesForwardOnly(t *testing.T) {
	e := newEnv(t)
	o := e.place(time.Now(), time.Minute)
	e.setStatus(o, order.StatusCompleted, "")
	steps := []struct {
		event string
		want  order.Delivery
	}{
		{event: "DeliveryScheduled", want: order.DeliveryPreparing},
		{event: "DeliveryDelivered", want: order.DeliveryDelivered},
		{event: "DeliveryShipped", want: order.DeliveryDelivered},
		{event: "DeliveryScheduled", want: order.DeliveryDelivered},
	}
	wantTimeline := []string{"OrderCreated@order-service"}
	for _, st := range steps {
		m := record(t, o, st.event)
		if err := e.deliver(context.Background(), m); err != nil {
			t.Fatalf("deliver %s: %v", st.event, err)
		}
		wantTimeline = append(wantTimeline, st.event+"@"+messaging.TopicShipping)
		if got := e.get(o.ID); got.Delivery != st.want || got.Status != order.StatusCompleted {
			t.Fatalf("after %s: order %s, delivery %q; want COMPLETED, %q", st.event, got.Status, got.Delivery, st.want)
		}
	}
	if got := e.timelineTypes(o.ID); !slices.Equal(got, wantTimeline) {
		t.Fatalf("timeline = %v, want %v", got, wantTimeline)
	}
	if out := e.outbox(o.ID); len(out) != 1 {
		t.Fatalf("delivery events emitted %d events, want none", len(out)-1)
	}
}

// TestDeliveryOfAnOrderNotCompletedIsPoison: the shipping service schedules a delivery only for a
// COMPLETED order, so a delivery event for any other is dead-lettered and changes nothing.
func TestDeliveryOfAnOrderNotCompletedIsPoison(t *testing.T) {
	tests := []struct {
		name   string
		status order.Status
		reason order.Reason
	}{
		{name: "pending", status: order.StatusPending},
		{name: "canceled", status: order.StatusCanceled, reason: order.ReasonPaymentFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			o := e.place(time.Now(), time.Minute)
			e.setStatus(o, tt.status, tt.reason)
			err := e.deliver(context.Background(), record(t, o, "DeliveryScheduled"))
			if !messaging.IsPermanent(err) {
				t.Fatalf("deliver() = %v, want a Permanent error", err)
			}
			if got := e.get(o.ID); got.Delivery != order.DeliveryNone || got.Status != tt.status {
				t.Fatalf("poison moved the order: %s, delivery %q", got.Status, got.Delivery)
			}
			if n := e.count(`SELECT count(*) FROM processed_events`); n != 0 {
				t.Fatalf("poison left %d inbox rows, want 0", n)
			}
			if got := e.timelineTypes(o.ID); len(got) != 1 {
				t.Fatalf("poison joined the timeline: %v", got)
			}
		})
	}
}

func TestSweeper(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	expired := e.place(time.Now().Add(-time.Minute), 30*time.Second)
	fresh := e.place(time.Now(), time.Minute)
	completed := e.place(time.Now().Add(-time.Minute), 30*time.Second)
	e.setStatus(completed, order.StatusCompleted, "")
	sweeper := saga.NewSweeper(e.app, e.metrics, zerolog.Nop(), time.Hour)

	n, err := sweeper.Sweep(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Sweep() = %d, %v; want 1", n, err)
	}
	tests := []struct {
		o          order.Order
		wantStatus order.Status
		wantReason order.Reason
		wantEmit   int
	}{
		{o: expired, wantStatus: order.StatusCanceled, wantReason: order.ReasonTimeout, wantEmit: 1},
		{o: fresh, wantStatus: order.StatusPending},
		{o: completed, wantStatus: order.StatusCompleted},
	}
	for _, tt := range tests {
		got := e.get(tt.o.ID)
		if got.Status != tt.wantStatus || got.Reason != tt.wantReason {
			t.Errorf("order %s is %s %q, want %s %q", tt.o.ID, got.Status, got.Reason, tt.wantStatus, tt.wantReason)
		}
		if out := e.outbox(tt.o.ID); len(out)-1 != tt.wantEmit {
			t.Errorf("order %s: %d events emitted by the sweep, want %d", tt.o.ID, len(out)-1, tt.wantEmit)
		}
	}
	out := e.outbox(expired.ID)
	if last := out[len(out)-1]; last.EventType != order.EventOrderCanceled || last.TraceID != expired.TraceID {
		t.Fatalf("sweep emitted %s in trace %s, want OrderCanceled in the order's trace %s", last.EventType, last.TraceID, expired.TraceID)
	}
	wantMetric := `
		# HELP order_saga_outcomes_total Orders that reached a terminal status, by status and cancellation reason.
		# TYPE order_saga_outcomes_total counter
		order_saga_outcomes_total{reason="TIMEOUT",status="CANCELED"} 1
	`
	if err := testutil.GatherAndCompare(e.reg, strings.NewReader(wantMetric), "order_saga_outcomes_total"); err != nil {
		t.Fatal(err)
	}

	// A payment authorization that arrives after the timeout changes nothing.
	if err := e.deliver(ctx, record(t, expired, "PaymentAuthorized")); err != nil {
		t.Fatal(err)
	}
	if got := e.get(expired.ID); got.Status != order.StatusCanceled || got.Reason != order.ReasonTimeout {
		t.Fatalf("late authorization moved a timed-out order to %s", got.Status)
	}
	if n, err := sweeper.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("second Sweep() = %d, %v; want 0", n, err)
	}
}

func TestSweeperRun(t *testing.T) {
	e := newEnv(t)
	o := e.place(time.Now(), 50*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- saga.NewSweeper(e.app, e.metrics, zerolog.Nop(), 20*time.Millisecond).Run(ctx)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for e.get(o.ID).Status != order.StatusCanceled {
		if time.Now().After(deadline) {
			t.Fatal("the running sweeper did not cancel an expired order within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v, want nil after cancel", err)
	}
}

// TestPaymentOfAnotherAmountIsPoison: a payment event whose amount or currency is not the
// order's (a bug, or a forged record) is refused for good and changes nothing.
func TestPaymentOfAnotherAmountIsPoison(t *testing.T) {
	tests := []struct {
		event            string
		amount           int64
		currency, reason string
	}{
		{event: "PaymentAuthorized", amount: 1, currency: "KRW"},
		{event: "PaymentAuthorized", amount: 39000, currency: "USD"},
		{event: "PaymentFailed", amount: 1, currency: "KRW", reason: "CARD_DECLINED"},
		{event: "PaymentVoided", amount: 2, currency: "KRW"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %d %s", tt.event, tt.amount, tt.currency), func(t *testing.T) {
			e := newEnv(t)
			o := e.place(time.Now(), time.Minute)
			data := map[string]any{"orderId": o.ID.String(), "amount": tt.amount, "currency": tt.currency}
			if tt.reason != "" {
				data["reason"] = tt.reason
			} else {
				data["pgTxnId"] = "pg_forged"
			}
			tp, _ := messaging.NewTraceparentIn(o.TraceID)
			err := e.deliver(context.Background(), rawRecord(t, messaging.TopicPayment, "payment", o.ID.String(), tt.event, data, tp))
			if !messaging.IsPermanent(err) {
				t.Fatalf("deliver = %v, want a permanent error (poison)", err)
			}
			if got := e.get(o.ID); got.Status != order.StatusPending {
				t.Fatalf("the order is %s, want PENDING", got.Status)
			}
			if n := e.count(`SELECT count(*) FROM processed_events`); n != 0 {
				t.Fatalf("the refused event is in the inbox (%d rows)", n)
			}
			if types := e.timelineTypes(o.ID); len(types) != 1 {
				t.Fatalf("timeline %v, want only OrderCreated", types)
			}
		})
	}
}

// TestStepsInABatch runs steps of several orders as a consumer with a batch size hands them over
// (kafka.HandleBatch over msgpg.Batches): in one transaction with one commit, each step seeing
// what the ones before it wrote (the order a PaymentAuthorized completed takes its delivery), a
// redelivery in the batch skipped by the batch's own inbox row, and each saga counted once. A
// poison rolls the batch back and its steps run one by one: those before it take effect once,
// and are counted once, despite the batch that rolled back.
func TestStepsInABatch(t *testing.T) {
	tests := []struct {
		name       string
		poison     bool // the third order's step is a payment of another amount
		wantDone   int
		wantTx     int // transactions that wrote the inbox
		wantStatus []order.Status
		wantMetric string
	}{
		{name: "one commit", wantDone: 5, wantTx: 1,
			wantStatus: []order.Status{order.StatusCompleted, order.StatusCanceled, order.StatusCanceled},
			wantMetric: `
				order_saga_outcomes_total{reason="",status="COMPLETED"} 1
				order_saga_outcomes_total{reason="OUT_OF_STOCK",status="CANCELED"} 1
				order_saga_outcomes_total{reason="PAYMENT_FAILED",status="CANCELED"} 1
			`},
		{name: "poison in the middle", poison: true, wantDone: 2, wantTx: 2,
			wantStatus: []order.Status{order.StatusCompleted, order.StatusCanceled, order.StatusPending},
			wantMetric: `
				order_saga_outcomes_total{reason="",status="COMPLETED"} 1
				order_saga_outcomes_total{reason="OUT_OF_STOCK",status="CANCELED"} 1
			`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			placed := []order.Order{e.place(time.Now(), time.Minute), e.place(time.Now(), time.Minute), e.place(time.Now(), time.Minute)}
			completed := record(t, placed[0], "PaymentAuthorized")
			third := record(t, placed[2], "PaymentFailed")
			if tt.poison {
				tp, _ := messaging.NewTraceparentIn(placed[2].TraceID)
				third = rawRecord(t, messaging.TopicPayment, "payment", placed[2].ID.String(), "PaymentAuthorized",
					map[string]any{"orderId": placed[2].ID.String(), "amount": 1, "currency": "KRW", "pgTxnId": "pg_forged"}, tp)
			}
			ms := []*messaging.Message{completed, record(t, placed[0], "DeliveryScheduled"), redeliver(completed),
				record(t, placed[1], "StockReservationFailed"), third}
			if tt.poison {
				ms = []*messaging.Message{completed, record(t, placed[1], "StockReservationFailed"), third, record(t, placed[0], "DeliveryScheduled")}
			}
			done := 0
			err := kafka.HandleBatch(context.Background(), e.deliver, msgpg.Batches(e.db), ms, func(i int) {
				if i != done {
					t.Errorf("done(%d) after %d messages", i, done)
				}
				done++
			})
			if tt.poison != messaging.IsPermanent(err) || (!tt.poison && err != nil) {
				t.Fatalf("HandleBatch = %v, want the poison's error: %v", err, tt.poison)
			}
			if done != tt.wantDone {
				t.Fatalf("%d messages done, want %d", done, tt.wantDone)
			}
			for i, o := range placed {
				if got := e.get(o.ID); got.Status != tt.wantStatus[i] {
					t.Errorf("order %d is %s, want %s", i, got.Status, tt.wantStatus[i])
				}
			}
			if got := e.get(placed[0].ID).Delivery; !tt.poison && got != order.DeliveryPreparing {
				t.Errorf("the completed order's delivery is %q, want PREPARING", got)
			}
			if n := e.count(`SELECT count(DISTINCT xmin::text) FROM processed_events`); n != tt.wantTx {
				t.Errorf("the inbox was written by %d transactions, want %d", n, tt.wantTx)
			}
			for _, o := range placed[:2] {
				if out := e.outbox(o.ID); len(out) != 2 {
					t.Errorf("outbox of order %s: %d events, want OrderCreated and one ending", o.ID, len(out))
				}
			}
			want := "# HELP order_saga_outcomes_total Orders that reached a terminal status, by status and cancellation reason.\n" +
				"# TYPE order_saga_outcomes_total counter\n" + tt.wantMetric
			if err := testutil.GatherAndCompare(e.reg, strings.NewReader(want), "order_saga_outcomes_total"); err != nil {
				t.Error(err)
			}
		})
	}
}

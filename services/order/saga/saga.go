// Package saga holds the order service's saga steps: one handler per event type it consumes
// from inventory-events, payment-events and shipping-events, the Router that lists them, and the
// deadline sweeper that cancels orders whose saga did not end in time.
//
// A step decodes the message and hands it to the application (app.App) inside the kit's
// step (messaging/postgres.Step): one transaction with the inbox row, in which the events the
// order decides (appended to its event store, which Debezium streams), the projection and the
// timeline rows commit, so a redelivered event changes nothing and a late one never moves an
// order that has ended. What the application did is logged and counted once it committed.
package saga

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/order"
	"outboxsaga.dev/order/app"
)

// Topics are the topics the order service consumes.
var Topics = []string{messaging.TopicInventory, messaging.TopicPayment, messaging.TopicShipping}

// Steps runs the saga steps against the order database.
type Steps struct {
	saga    *msgpg.Saga
	app     *app.App
	metrics *Metrics
}

// New returns the saga steps over db (the inbox and the steps' transactions), run by a. The
// order emits to its event store (through a), never to the outbox.
func New(db *sql.DB, a *app.App, metrics *Metrics) *Steps {
	return &Steps{saga: &msgpg.Saga{DB: db}, app: a, metrics: metrics}
}

// Router returns the router of every event type the order service consumes, keyed by orderId.
// Anything else on its topics is poison (the Router dead-letters it). Every step is database work
// alone, so every one may run in a batch's transaction (HandleBatchable).
func (s *Steps) Router() *messaging.Router {
	r := messaging.NewRouter()
	r.Key(messaging.Keyed{Field: "orderId"})
	r.HandleBatchable(order.EventStockReservationFailed, 1, msgpg.Step(s.saga, s.StockReservationFailed))
	r.HandleBatchable(order.EventPaymentAuthorized, 1, msgpg.Step(s.saga, s.PaymentAuthorized))
	r.HandleBatchable(order.EventPaymentFailed, 1, msgpg.Step(s.saga, s.PaymentFailed))
	r.HandleBatchable(order.EventPaymentVoided, 1, msgpg.Step(s.saga, s.PaymentVoided))
	// Events that move nothing here but belong to the order's timeline.
	for _, t := range []string{order.EventStockReserved, order.EventStockReleased, order.EventStockCommitted} {
		r.HandleBatchable(t, 1, msgpg.Step(s.saga, s.Record))
	}
	// About a SKU, not an order (keyed by the SKU): the sold-out table POST /orders reads.
	r.HandleBatchable(order.EventStockDepleted, 1, msgpg.Step(s.saga, s.StockDepleted))
	r.HandleBatchable(order.EventStockReplenished, 1, msgpg.Step(s.saga, s.StockReplenished))
	for _, t := range order.DeliveryEventTypes() {
		r.HandleBatchable(t, 1, msgpg.Step(s.saga, s.Delivery))
	}
	return r
}

// Data is what the steps read of a consumed event: the order it is about and, of a payment
// event, the payment's terms.
type Data struct {
	OrderID  string `json:"orderId"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// StockReservationFailed: app.StockReservationFailed.
func (s *Steps) StockReservationFailed(ctx context.Context, tx *sql.Tx, m *messaging.Message, d Data) (msgpg.Result, error) {
	return s.run(ctx, tx, m, d, s.app.StockReservationFailed)
}

// PaymentAuthorized: app.PaymentAuthorized.
func (s *Steps) PaymentAuthorized(ctx context.Context, tx *sql.Tx, m *messaging.Message, d Data) (msgpg.Result, error) {
	return s.run(ctx, tx, m, d, paying(d, s.app.PaymentAuthorized))
}

// PaymentFailed: app.PaymentFailed.
func (s *Steps) PaymentFailed(ctx context.Context, tx *sql.Tx, m *messaging.Message, d Data) (msgpg.Result, error) {
	return s.run(ctx, tx, m, d, paying(d, s.app.PaymentFailed))
}

// PaymentVoided: app.PaymentVoided.
func (s *Steps) PaymentVoided(ctx context.Context, tx *sql.Tx, m *messaging.Message, d Data) (msgpg.Result, error) {
	return s.run(ctx, tx, m, d, paying(d, s.app.PaymentVoided))
}

// Record: app.Record (StockReserved, StockReleased, StockCommitted).
func (s *Steps) Record(ctx context.Context, tx *sql.Tx, m *messaging.Message, d Data) (msgpg.Result, error) {
	return s.run(ctx, tx, m, d, s.app.Record)
}

// StockData is the data of StockDepleted and StockReplenished that the steps read.
type StockData struct {
	SKU string `json:"sku"`
}

// StockDepleted records that the inventory sold d.SKU out (app.StockChanged).
func (s *Steps) StockDepleted(ctx context.Context, tx *sql.Tx, m *messaging.Message, d StockData) (msgpg.Result, error) {
	return s.stockChanged(ctx, tx, m, d, true)
}

// StockReplenished records that the inventory has d.SKU again (app.StockChanged).
func (s *Steps) StockReplenished(ctx context.Context, tx *sql.Tx, m *messaging.Message, d StockData) (msgpg.Result, error) {
	return s.stockChanged(ctx, tx, m, d, false)
}

func (s *Steps) stockChanged(ctx context.Context, tx *sql.Tx, m *messaging.Message, d StockData, soldOut bool) (msgpg.Result, error) {
	if d.SKU == "" || d.SKU != m.AggregateID {
		return msgpg.Result{}, fault.Errorf(fault.Invalid, "%s names sku %q under key %q", m.EventType, d.SKU, m.AggregateID)
	}
	applied, err := s.app.StockChanged(ctx, tx, d.SKU, soldOut, m.OccurredAt)
	if err != nil {
		return msgpg.Result{}, err
	}
	return msgpg.Result{Done: func(log *zerolog.Logger) {
		log.Info().Str("sku", d.SKU).Bool("soldOut", soldOut).Bool("applied", applied).Msg("sku availability recorded")
	}}, nil
}

// Delivery: app.DeliveryReached with the delivery status the event announces (DeliveryScheduled,
// DeliveryShipped, DeliveryDelivered).
func (s *Steps) Delivery(ctx context.Context, tx *sql.Tx, m *messaging.Message, d Data) (msgpg.Result, error) {
	reached, ok := order.DeliveryOf(m.EventType)
	if !ok {
		return msgpg.Result{}, fault.Errorf(fault.Invalid, "not a delivery event")
	}
	return s.run(ctx, tx, m, d, func(ctx context.Context, tx *sql.Tx, ev app.Consumed) (app.Outcome, error) {
		return s.app.DeliveryReached(ctx, tx, ev, reached)
	})
}

// useCase is an application method that applies a consumed event in the step's transaction.
type useCase func(ctx context.Context, tx *sql.Tx, ev app.Consumed) (app.Outcome, error)

// paying is use with the payment's terms that d holds.
func paying(d Data, use func(context.Context, *sql.Tx, app.Consumed, app.Payment) (app.Outcome, error)) useCase {
	return func(ctx context.Context, tx *sql.Tx, ev app.Consumed) (app.Outcome, error) {
		return use(ctx, tx, ev, app.Payment{Amount: d.Amount, Currency: d.Currency})
	}
}

// run hands m, about the order d names, to use and reports what it did once the step committed.
// A message that does not name an order by uuid is poison (fault.Invalid). The application's
// errors go to the Router's mapping (messaging.Classify) as they are, but one: a concurrent
// write, a conflict to a request (409, try again), is retried here like any transient error.
func (s *Steps) run(ctx context.Context, tx *sql.Tx, m *messaging.Message, d Data, use useCase) (msgpg.Result, error) {
	id, err := uuid.Parse(d.OrderID)
	if err != nil {
		return msgpg.Result{}, fault.Errorf(fault.Invalid, "order id %q: %v", d.OrderID, err)
	}
	out, err := use(ctx, tx, app.Consumed{OrderID: id, Trace: m.NextSpan(), Entry: order.TimelineEntry{
		EventID: m.EventID, EventType: m.EventType, Source: m.Topic, OccurredAt: m.OccurredAt, Data: m.Data}})
	if fault.Reason(err) == order.CodeConcurrentWrite {
		return msgpg.Result{}, fmt.Errorf("retry: %v", err)
	}
	if err != nil {
		return msgpg.Result{}, err
	}
	return msgpg.Result{Done: func(log *zerolog.Logger) { s.report(log, out) }}, nil
}

// report logs and counts what applying an event did.
func (s *Steps) report(log *zerolog.Logger, out app.Outcome) {
	switch {
	case out.Ignored:
		log.Info().Str("status", string(out.Order.Status)).Msg("late event recorded; order already ended, ignored")
	case out.Ended():
		s.metrics.terminal(out.Order)
		log.Info().Str("status", string(out.Order.Status)).Str("reason", string(out.Order.Reason)).
			Str("emitted", out.Emitted.EventType).Str("emittedEventId", out.Emitted.EventID).Msg("order ended")
	case out.Order.Status == "": // app.Record: the order was not loaded
		log.Info().Msg("event recorded")
	default:
		log.Info().Str("status", string(out.Order.Status)).Msg("event recorded")
	}
}

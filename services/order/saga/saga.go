// Package saga holds the order service's saga steps: one handler per event type it consumes
// from inventory-events, payment-events and shipping-events, the Router that lists them, and the
// deadline sweeper that cancels orders whose saga did not end in time.
//
// A step decodes the message and hands it to the application (app.Application), in one
// transaction with the inbox row (messaging/postgres.Transactional): the events the order
// decides, the projection and the timeline commit with it, so a redelivered event changes
// nothing and a late one never moves an order that has ended. What the application did is logged
// and counted once that transaction committed.
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
	db      *sql.DB
	app     *app.Application
	metrics *Metrics
}

// New returns the saga steps over db (the inbox and the steps' transactions), run by a.
func New(db *sql.DB, a *app.Application, metrics *Metrics) *Steps {
	return &Steps{db: db, app: a, metrics: metrics}
}

// Router returns the router of every event type the order service consumes. Anything else on
// its topics is poison (the Router dead-letters it). Every step is database work alone, so every
// one may run in a batch's transaction (HandleBatchable).
func (s *Steps) Router() *messaging.Router {
	r := messaging.NewRouter()
	r.HandleBatchable(order.EventStockReservationFailed, 1, s.StockReservationFailed)
	r.HandleBatchable(order.EventPaymentAuthorized, 1, s.PaymentAuthorized)
	r.HandleBatchable(order.EventPaymentFailed, 1, s.PaymentFailed)
	// Events that move nothing here but belong to the order's timeline.
	r.HandleBatchable(order.EventStockReserved, 1, s.Record)
	r.HandleBatchable(order.EventStockReleased, 1, s.Record)
	r.HandleBatchable(order.EventStockCommitted, 1, s.Record)
	r.HandleBatchable(order.EventPaymentVoided, 1, s.PaymentVoided)
	r.HandleBatchable(order.EventDeliveryScheduled, 1, s.Delivery)
	r.HandleBatchable(order.EventDeliveryShipped, 1, s.Delivery)
	r.HandleBatchable(order.EventDeliveryDelivered, 1, s.Delivery)
	return r
}

// StockReservationFailed: app.StockReservationFailed.
func (s *Steps) StockReservationFailed(ctx context.Context, m *messaging.Message) error {
	return s.run(ctx, m, s.app.StockReservationFailed)
}

// PaymentAuthorized: app.PaymentAuthorized.
func (s *Steps) PaymentAuthorized(ctx context.Context, m *messaging.Message) error {
	return s.payment(ctx, m, s.app.PaymentAuthorized)
}

// PaymentFailed: app.PaymentFailed.
func (s *Steps) PaymentFailed(ctx context.Context, m *messaging.Message) error {
	return s.payment(ctx, m, s.app.PaymentFailed)
}

// PaymentVoided: app.PaymentVoided.
func (s *Steps) PaymentVoided(ctx context.Context, m *messaging.Message) error {
	return s.payment(ctx, m, s.app.PaymentVoided)
}

// Record: app.Record (StockReserved, StockReleased, StockCommitted).
func (s *Steps) Record(ctx context.Context, m *messaging.Message) error {
	return s.run(ctx, m, s.app.Record)
}

// Delivery: app.DeliveryReached with the delivery status the event announces
// (DeliveryScheduled, DeliveryShipped, DeliveryDelivered).
func (s *Steps) Delivery(ctx context.Context, m *messaging.Message) error {
	d, ok := order.DeliveryOf(m.EventType)
	if !ok {
		return messaging.Permanent(fmt.Errorf("%s %s: not a delivery event", m.EventType, m.EventID))
	}
	return s.run(ctx, m, func(ctx context.Context, tx *sql.Tx, ev app.Consumed) (app.Outcome, error) {
		return s.app.DeliveryReached(ctx, tx, ev, d)
	})
}

// payment decodes the terms of a payment event and runs use with them.
func (s *Steps) payment(ctx context.Context, m *messaging.Message, use func(context.Context, *sql.Tx, app.Consumed, app.Payment) (app.Outcome, error)) error {
	var p struct {
		Amount   int64  `json:"amount"`
		Currency string `json:"currency"`
	}
	if err := m.DecodeData(&p); err != nil {
		return err
	}
	return s.run(ctx, m, func(ctx context.Context, tx *sql.Tx, ev app.Consumed) (app.Outcome, error) {
		return use(ctx, tx, ev, app.Payment{Amount: p.Amount, Currency: p.Currency})
	})
}

// useCase is an application method that applies a consumed event in the step's transaction.
type useCase func(ctx context.Context, tx *sql.Tx, ev app.Consumed) (app.Outcome, error)

// run decodes the order m is about and runs use in one transaction with the inbox check (a
// batch's, in a batch). An error the application returns as a fault.Invalid (the event is not
// about this order as it is) is poison; any other is retried. It logs through the message's
// logger and counts once that transaction committed.
func (s *Steps) run(ctx context.Context, m *messaging.Message, use useCase) error {
	id, err := orderID(m)
	if err != nil {
		return err
	}
	ev := app.Consumed{OrderID: id, Trace: m.NextSpan(), Entry: order.TimelineEntry{
		EventID: m.EventID, EventType: m.EventType, Source: m.Topic, OccurredAt: m.OccurredAt, Data: m.Data}}
	var (
		out app.Outcome
		ran bool
	)
	step := msgpg.Transactional(s.db, func(ctx context.Context, tx *sql.Tx, _ *messaging.Message) (err error) {
		out, err = use(ctx, tx, ev)
		ran = err == nil
		return err
	})
	if err := step(ctx, m); err != nil {
		if fault.Code(err) == fault.Invalid {
			return messaging.Permanent(err)
		}
		return err
	}
	log := zerolog.Ctx(ctx)
	messaging.AfterCommit(ctx, func() {
		switch {
		case !ran:
			log.Info().Msg("duplicate event skipped")
		case out.Ignored:
			log.Info().Str("status", string(out.Order.Status)).Msg("late event recorded; order already ended, ignored")
		case out.Ended():
			s.metrics.terminal(out.Order)
			log.Info().Str("status", string(out.Order.Status)).Str("reason", string(out.Order.Reason)).
				Str("emitted", out.Emitted.EventType).Str("emittedEventId", out.Emitted.EventID).Msg("order ended")
		default:
			log.Info().Str("status", string(out.Order.Status)).Msg("event recorded")
		}
	})
	return nil
}

// orderID returns the order m is about: its data.orderId, which DecodeData checks against its
// aggregate id (the Kafka key). A message that does not name an order by uuid is poison.
func orderID(m *messaging.Message) (uuid.UUID, error) {
	var data struct {
		OrderID string `json:"orderId"`
	}
	if err := m.DecodeData(&data); err != nil {
		return uuid.Nil, err
	}
	id, err := uuid.Parse(data.OrderID)
	if err != nil {
		return uuid.Nil, messaging.Permanent(fmt.Errorf("%s %s: order id %q: %w", m.EventType, m.EventID, data.OrderID, err))
	}
	return id, nil
}

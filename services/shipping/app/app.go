// Package app holds the shipping service's use cases, which its saga step and its HTTP routes
// both call: schedule an order's one delivery (Schedule, for OrderCompleted), and move
// deliveries one step forward (the carrier simulator, Carry and AdvanceDue; an operator,
// Advance). Every change of a delivery commits in one transaction with its event. The domain
// (package shipping) decides; the use cases persist and emit.
package app

import (
	"context"
	"database/sql"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/shipping"
)

// Deliveries is where the use cases keep the deliveries; *postgres.Deliveries implements it.
type Deliveries interface {
	Create(ctx context.Context, tx *sql.Tx, d shipping.Delivery) (created bool, err error)
	Update(ctx context.Context, tx *sql.Tx, orderID string, fn func(*shipping.Delivery) error) (shipping.Delivery, error)
	UpdateDue(ctx context.Context, tx *sql.Tx, reachedBy time.Time, limit int, fn func(*shipping.Delivery) error) ([]shipping.Delivery, error)
}

// App is the shipping service's use cases over its database.
type App struct {
	db         *sql.DB
	deliveries Deliveries
	outbox     *msgpg.Outbox
	metrics    *Metrics
	log        zerolog.Logger // the carrier's; Schedule reports through the message's logger
	every      time.Duration  // how long a delivery stays in a status before the carrier moves it
}

// New returns the use cases over db, whose events go out through outbox, with a carrier that
// moves a delivery one step every (0 or less: at each look) and logs to log.
func New(db *sql.DB, deliveries Deliveries, outbox *msgpg.Outbox, metrics *Metrics, log zerolog.Logger, every time.Duration) *App {
	return &App{db: db, deliveries: deliveries, outbox: outbox, metrics: metrics, log: log, every: max(every, 0)}
}

// Schedule schedules the one delivery (PREPARING) of a completed order, in the caller's
// transaction tx and in the order's trace (parent: the span its later events hang below), and returns DeliveryScheduled to emit with
// what to report once committed. An order that has a delivery already (the same OrderCompleted
// under a new event id) gets no second one and emits nothing. Data the domain refuses is a
// fault.Invalid.
func (s *App) Schedule(ctx context.Context, tx *sql.Tx, orderID string, items []shipping.Item, parent messaging.Traceparent) (msgpg.Result, error) {
	d, scheduled, err := shipping.Schedule(orderID, uuid.NewString(), items, parent.TraceID(), time.Now())
	if err != nil {
		return msgpg.Result{}, err
	}
	d.Traceparent = parent.String()
	created, err := s.deliveries.Create(ctx, tx, d)
	if err != nil {
		return msgpg.Result{}, err
	}
	if !created {
		return msgpg.Result{Done: func(log *zerolog.Logger) {
			s.metrics.ignored.Inc()
			log.Info().Msg("OrderCompleted for an order that has its delivery: no second one")
		}}, nil
	}
	return msgpg.Result{Events: []messaging.Event{scheduled}, Done: func(log *zerolog.Logger) {
		s.metrics.reached(d)
		log.Info().Str("deliveryId", d.ID).Str("status", string(d.Status)).Msg("delivery scheduled")
	}}, nil
}

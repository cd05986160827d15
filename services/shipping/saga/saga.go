// Package saga moves the shipping service's deliveries: the saga step OrderCompleted (from
// order-events) schedules an order's one delivery, the Router lists what the service handles and
// what it knowingly ignores, and the carrier simulator (Carry, and Advance for an operator)
// moves deliveries forward.
//
// Every change of a delivery commits in one transaction with its event: the step's with its
// inbox row too (messaging/postgres.Step). The domain (package shipping) decides; the
// step and the carrier persist and emit.
package saga

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

// Topics are the topics the shipping service consumes.
var Topics = []string{messaging.TopicOrder}

// Deliveries is where the steps and the carrier keep the deliveries; *postgres.Deliveries
// implements it.
type Deliveries interface {
	Create(ctx context.Context, tx *sql.Tx, d shipping.Delivery) (created bool, err error)
	Update(ctx context.Context, tx *sql.Tx, orderID string, fn func(*shipping.Delivery) error) (shipping.Delivery, error)
	UpdateDue(ctx context.Context, tx *sql.Tx, reachedBy time.Time, limit int, fn func(*shipping.Delivery) error) ([]shipping.Delivery, error)
}

// Steps runs the saga step and the carrier against the shipping database.
type Steps struct {
	saga       *msgpg.Saga
	deliveries Deliveries
	metrics    *Metrics
	log        zerolog.Logger // the carrier's; the step logs through the message's logger
	every      time.Duration  // how long a delivery stays in a status before the carrier moves it
}

// New returns the saga steps over db, whose events go out through outbox, with a carrier that
// moves a delivery one step every (0 or less: at each look) and logs to log.
func New(db *sql.DB, deliveries Deliveries, outbox *msgpg.Outbox, metrics *Metrics,
	log zerolog.Logger, every time.Duration) *Steps {
	return &Steps{
		saga:       &msgpg.Saga{DB: db, Outbox: outbox, AggregateType: shipping.AggregateType, Version: shipping.EventVersion},
		deliveries: deliveries, metrics: metrics, log: log, every: max(every, 0),
	}
}

// Router returns the router of the shipping saga, keyed by orderId. It handles OrderCompleted,
// and OrderCreated to record whose order it is (nothing ships before the order completes), and
// knowingly ignores OrderCanceled (a canceled order never completed, so it has no delivery, and
// no OrderCompleted follows it: see the package shipping doc). Anything else on order-events is
// poison. The steps are database work alone, so they may run in a batch's transaction
// (HandleBatchable).
func (s *Steps) Router() *messaging.Router {
	r := messaging.NewRouter()
	r.Key(messaging.Keyed{Field: "orderId"})
	r.HandleBatchable("OrderCompleted", 1, msgpg.Step(s.saga, s.OrderCompleted))
	r.HandleBatchable("OrderCreated", 2, msgpg.RememberCustomers(s.saga.DB)) // v2, the latest (a v1 arrives upcast): whose order it is, for GET /deliveries/{orderId}
	r.Ignore("OrderCanceled", 1)
	return r
}

// OrderCompletedData is the data of OrderCompleted v1 that the step reads.
type OrderCompletedData struct {
	OrderID string          `json:"orderId"`
	Items   []shipping.Item `json:"items"`
}

// OrderCompleted schedules the order's one delivery (PREPARING) and emits DeliveryScheduled, in
// the order's trace. An order that has a delivery already (the same OrderCompleted under a new
// event id) gets no second one: the event is recorded in the inbox and nothing else happens.
// Data the domain refuses is poison (fault.Invalid; the schema lets none through).
func (s *Steps) OrderCompleted(ctx context.Context, tx *sql.Tx, m *messaging.Message, data OrderCompletedData) (msgpg.Result, error) {
	d, scheduled, err := shipping.Schedule(data.OrderID, uuid.NewString(), data.Items, m.TraceID, time.Now())
	if err != nil {
		return msgpg.Result{}, err
	}
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

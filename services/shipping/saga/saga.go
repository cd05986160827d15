// Package saga moves the shipping service's deliveries: the saga step OrderCompleted (from
// order-events) schedules an order's one delivery, the Router lists what the service handles and
// what it knowingly ignores, and the carrier simulator (Carry, and Advance for an operator)
// moves deliveries forward.
//
// Every change of a delivery commits in one transaction with its event: the step's with its
// inbox row too (messaging/postgres.Transactional). The domain (package shipping) decides; the
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
	"outboxsaga.dev/shipping/postgres"
)

// Topics are the topics the shipping service consumes.
var Topics = []string{messaging.TopicOrder}

// Steps runs the saga step and the carrier against the shipping database.
type Steps struct {
	db         *sql.DB
	deliveries *postgres.Deliveries
	outbox     *msgpg.Outbox
	metrics    *Metrics
	log        zerolog.Logger // the carrier's; the step logs through the message's logger
	every      time.Duration  // how long a delivery stays in a status before the carrier moves it
}

// New returns the saga steps over db, whose events go out through outbox, with a carrier that
// moves a delivery one step every (0 or less: at each look) and logs to log.
func New(db *sql.DB, deliveries *postgres.Deliveries, outbox *msgpg.Outbox, metrics *Metrics,
	log zerolog.Logger, every time.Duration) *Steps {
	return &Steps{db: db, deliveries: deliveries, outbox: outbox, metrics: metrics, log: log, every: max(every, 0)}
}

// Router returns the router of the shipping saga. It handles OrderCompleted, and OrderCreated to
// record whose order it is (nothing ships before the order completes), and knowingly ignores
// OrderCanceled (a canceled order never completed, so it has no delivery, and no OrderCompleted
// follows it: see the package shipping doc). Anything else on order-events is poison. The steps are
// database work alone, so they may run in a batch's transaction (HandleBatchable).
func (s *Steps) Router() *messaging.Router {
	r := messaging.NewRouter()
	r.HandleBatchable("OrderCompleted", 1, s.OrderCompleted)
	r.HandleBatchable("OrderCreated", 2, s.OrderCreated) // v2, the latest: a v1 arrives upcast (messaging/upcast) // whose order it is (GET /deliveries/{orderId})
	r.Ignore("OrderCanceled", 1)
	return r
}

// OrderCompleted schedules the order's one delivery (PREPARING) and emits DeliveryScheduled, in
// the order's trace. An order that has a delivery already (the same OrderCompleted under a new
// event id) gets no second one: the event is recorded in the inbox and nothing else happens.
// Data the domain refuses is poison (the schema lets none through).
func (s *Steps) OrderCompleted(ctx context.Context, m *messaging.Message) error {
	var data struct {
		OrderID string          `json:"orderId"`
		Items   []shipping.Item `json:"items"`
	}
	if err := m.DecodeData(&data); err != nil {
		return err
	}
	d, scheduled, err := shipping.Schedule(data.OrderID, uuid.NewString(), data.Items, m.TraceID, time.Now())
	if err != nil {
		return messaging.Permanent(err)
	}
	outcome := "skipped" // by the inbox: the event took effect before
	err = msgpg.Transactional(s.db, func(ctx context.Context, tx *sql.Tx, m *messaging.Message) error {
		created, err := s.deliveries.Create(ctx, tx, d)
		if err != nil || !created {
			outcome = "ignored"
			return err
		}
		outcome = "scheduled"
		_, err = s.outbox.EmitFor(ctx, tx, m, shipping.AggregateType, d.OrderID, shipping.EventVersion, scheduled)
		return err
	})(ctx, m)
	if err != nil {
		return err
	}
	messaging.AfterCommit(ctx, func() { // a batch's commit, in a batch
		log := zerolog.Ctx(ctx)
		switch outcome {
		case "scheduled":
			s.metrics.reached(d)
			log.Info().Str("deliveryId", d.ID).Str("status", string(d.Status)).Msg("delivery scheduled")
		case "ignored":
			s.metrics.ignored.Inc()
			log.Info().Msg("OrderCompleted for an order that has its delivery: no second one")
		default:
			log.Info().Msg("saga step skipped: event already processed")
		}
	})
	return nil
}

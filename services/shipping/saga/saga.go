// Package saga is the shipping service's consumer side: the saga step OrderCompleted (from
// order-events) schedules an order's one delivery through the use cases (package app), and the
// Router lists what the service handles and what it knowingly ignores. The step commits in one
// transaction with its inbox row and its event (messaging/postgres.Step).
package saga

import (
	"context"
	"database/sql"

	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/tracing"
	"outboxsaga.dev/shipping"
	"outboxsaga.dev/shipping/app"
)

// Topics are the topics the shipping service consumes.
var Topics = []string{messaging.TopicOrder}

// Steps is the shipping service's saga step over its use cases.
type Steps struct {
	saga *msgpg.Saga
	app  *app.App
}

// New returns the saga step over db, whose events go out through outbox, scheduling through a.
func New(db *sql.DB, outbox *msgpg.Outbox, a *app.App) *Steps {
	return &Steps{saga: &msgpg.Saga{DB: db, Outbox: outbox, AggregateType: shipping.AggregateType, Version: shipping.EventVersion}, app: a}
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

// OrderCompleted schedules the order's one delivery (app.Schedule) and emits DeliveryScheduled,
// in the order's trace. An order that has a delivery already gets no second one: the event is
// recorded in the inbox and nothing else happens. Data the domain refuses is poison
// (fault.Invalid; the schema lets none through).
func (s *Steps) OrderCompleted(ctx context.Context, tx *sql.Tx, m *messaging.Message, data OrderCompletedData) (msgpg.Result, error) {
	// The carrier's later moves hang below this step's span (tracing on), else below a span of
	// the order's trace.
	return s.app.Schedule(ctx, tx, data.OrderID, data.Items, tracing.OutboxTraceparent(ctx, m.NextSpan()))
}

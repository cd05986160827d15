// Package saga holds the inventory service's saga steps: one handler per order event it
// consumes from order-events (OrderCreated, OrderCanceled, OrderCompleted) and the Router that
// lists them.
//
// Every step runs in one transaction with the inbox check (messaging/postgres.Step):
// the event id, the reservation, the stock moves and the outbox rows commit together or not at
// all. The domain (package inventory) decides; the steps load, persist and emit.
package saga

import (
	"context"
	"database/sql"
	"errors"

	"github.com/rs/zerolog"

	"outboxsaga.dev/inventory"
	"outboxsaga.dev/inventory/postgres"
	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
)

// Topics are the topics the inventory service consumes.
var Topics = []string{messaging.TopicOrder}

// Reservations is where the steps keep the orders' reservations and move their stock, in the
// step's transaction; *postgres.Reservations implements it.
type Reservations interface {
	Create(ctx context.Context, tx *sql.Tx, orderID string, skus []string, decide postgres.Decide) (c inventory.Change, created bool, err error)
	Update(ctx context.Context, tx *sql.Tx, orderID string, decide postgres.Decide) (inventory.Change, error)
}

// Steps runs the saga steps against the inventory database.
type Steps struct {
	saga         *msgpg.Saga
	reservations Reservations
	metrics      *Metrics
}

// New returns the saga steps over db; their events go out through outbox.
func New(db *sql.DB, reservations Reservations, outbox *msgpg.Outbox, metrics *Metrics) *Steps {
	return &Steps{
		saga:         &msgpg.Saga{DB: db, Outbox: outbox, AggregateType: inventory.AggregateType, Version: inventory.EventVersion},
		reservations: reservations,
		metrics:      metrics,
	}
}

// Router returns the router of the inventory saga: exactly the three order events, keyed by
// orderId. Anything else on order-events is poison for this service (the Router dead-letters it).
// Every step is database work alone, so every one may run in a batch's transaction
// (HandleBatchable).
func (s *Steps) Router() *messaging.Router {
	r := messaging.NewRouter()
	r.Key(messaging.Keyed{Field: "orderId"})
	r.HandleBatchable("OrderCreated", 2, msgpg.Step(s.saga, s.OrderCreated)) // v2, the latest: a v1 arrives upcast (messaging/upcast)
	r.HandleBatchable("OrderCanceled", 1, msgpg.Step(s.saga, s.OrderCanceled))
	r.HandleBatchable("OrderCompleted", 1, msgpg.Step(s.saga, s.OrderCompleted))
	return r
}

// OrderCreated reserves the order's items, all or nothing, unless inventory has seen the order
// before (a redelivery under a new event id, or an OrderCanceled that came first). An order the
// domain refuses is poison (fault.Invalid; the schema lets none through).
func (s *Steps) OrderCreated(ctx context.Context, tx *sql.Tx, _ *messaging.Message, d OrderCreatedData) (msgpg.Result, error) {
	o := inventory.Order{ID: d.OrderID, Items: d.Items, Amount: d.Amount, Currency: d.Currency, PaymentToken: d.PaymentToken}
	if err := o.Validate(); err != nil {
		return msgpg.Result{}, err
	}
	c, created, err := s.reservations.Create(ctx, tx, o.ID, inventory.SKUs(o.Items),
		func(_ inventory.Reservation, stock map[string]inventory.Stock) (inventory.Change, error) {
			return inventory.Reserve(o, stock)
		})
	if err == nil && !created {
		c = inventory.Change{Outcome: inventory.OutcomeIgnored}
	}
	return s.result(c), err
}

// OrderCanceled releases a held reservation. For an order inventory never saw it stores a
// RELEASED marker that holds nothing, so that a late OrderCreated cannot reserve stock for a
// canceled order.
func (s *Steps) OrderCanceled(ctx context.Context, tx *sql.Tx, _ *messaging.Message, d OrderCanceledData) (msgpg.Result, error) {
	c, err := s.reservations.Update(ctx, tx, d.OrderID,
		func(r inventory.Reservation, stock map[string]inventory.Stock) (inventory.Change, error) {
			return inventory.Release(r, stock, d.Reason)
		})
	if errors.Is(err, postgres.ErrNoReservation) {
		c, _, err = s.reservations.Create(ctx, tx, d.OrderID, nil,
			func(inventory.Reservation, map[string]inventory.Stock) (inventory.Change, error) {
				return inventory.CancelUnseen(d.OrderID, d.Items, d.Reason), nil
			})
	}
	return s.result(c), err
}

// OrderCompleted commits a held reservation. An order without one cannot have completed
// through this saga; the event is recorded in the inbox and otherwise ignored.
func (s *Steps) OrderCompleted(ctx context.Context, tx *sql.Tx, _ *messaging.Message, d OrderCompletedData) (msgpg.Result, error) {
	c, err := s.reservations.Update(ctx, tx, d.OrderID, inventory.Commit)
	if errors.Is(err, postgres.ErrNoReservation) {
		zerolog.Ctx(ctx).Warn().Msg("OrderCompleted for an order without reservation; ignored")
		c, err = inventory.Change{Outcome: inventory.OutcomeIgnored}, nil
	}
	return s.result(c), err
}

// result is what a step's change emits and, once committed, counts and logs through the
// message's logger. Any error of a step is left retryable: the database's (an outage, a
// serialization failure or deadlock) until the database answers, a broken invariant
// (fault.Internal) until the consumer's attempts run out and it is dead-lettered.
func (s *Steps) result(c inventory.Change) msgpg.Result {
	return msgpg.Result{Events: c.Events, Done: func(log *zerolog.Logger) {
		s.metrics.observe(c.Outcome)
		log.Info().Str("outcome", string(c.Outcome)).Str("status", string(c.Reservation.Status)).Msg("saga step done")
	}}
}

// OrderCreatedData is the data of OrderCreated v2 that the step reads.
type OrderCreatedData struct {
	OrderID      string           `json:"orderId"`
	CustomerID   string           `json:"customerId"`
	Items        []inventory.Item `json:"items"`
	Amount       int64            `json:"amount"`
	Currency     string           `json:"currency"`
	PaymentToken string           `json:"paymentToken"`
}

// OrderCanceledData is the data of OrderCanceled v1 that the step reads.
type OrderCanceledData struct {
	OrderID string           `json:"orderId"`
	Reason  string           `json:"reason"`
	Items   []inventory.Item `json:"items"`
}

// OrderCompletedData is the data of OrderCompleted v1 that the step reads.
type OrderCompletedData struct {
	OrderID  string           `json:"orderId"`
	Items    []inventory.Item `json:"items"`
	Amount   int64            `json:"amount"`
	Currency string           `json:"currency"`
}

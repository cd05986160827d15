// Package saga holds the inventory service's saga steps: one handler per order event it
// consumes from order-events (OrderCreated, OrderCanceled, OrderCompleted) and the Router that
// lists them.
//
// Every step runs in one transaction with the inbox check (messaging/postgres.Transactional):
// the event id, the reservation, the stock moves and the outbox rows commit together or not at
// all. The domain (package inventory) decides; the steps load, persist and emit.
package saga

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"outboxsaga.dev/inventory"
	"outboxsaga.dev/inventory/postgres"
	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
)

// Topics are the topics the inventory service consumes.
var Topics = []string{messaging.TopicOrder}

// Steps runs the saga steps against the inventory database.
type Steps struct {
	db      *sql.DB
	stock   *postgres.Stock
	outbox  *msgpg.Outbox
	metrics *Metrics
}

// New returns the saga steps over db; their events go out through outbox.
func New(db *sql.DB, stock *postgres.Stock, outbox *msgpg.Outbox, metrics *Metrics) *Steps {
	return &Steps{db: db, stock: stock, outbox: outbox, metrics: metrics}
}

// Router returns the router of the inventory saga: exactly the three order events. Anything
// else on order-events is poison for this service (the Router dead-letters it). Every step is
// database work alone, so every one may run in a batch's transaction (HandleBatchable).
func (s *Steps) Router() *messaging.Router {
	r := messaging.NewRouter()
	r.HandleBatchable("OrderCreated", 2, s.OrderCreated) // v2, the latest: a v1 arrives upcast (messaging/upcast)
	r.HandleBatchable("OrderCanceled", 1, s.OrderCanceled)
	r.HandleBatchable("OrderCompleted", 1, s.OrderCompleted)
	return r
}

// OrderCreated reserves the order's items, all or nothing, unless inventory has seen the order
// before (a redelivery under a new event id, or an OrderCanceled that came first).
func (s *Steps) OrderCreated(ctx context.Context, m *messaging.Message) error {
	var d orderCreatedData
	if err := m.DecodeData(&d); err != nil {
		return err
	}
	o := inventory.Order{ID: d.OrderID, Items: d.Items, Amount: d.Amount, Currency: d.Currency, PaymentToken: d.PaymentToken}
	if err := o.Validate(); err != nil {
		return messaging.Permanent(fmt.Errorf("%s %s: %w", m.EventType, m.EventID, err))
	}
	return s.apply(ctx, m, o.ID, func(ctx context.Context, tx *sql.Tx) (inventory.Change, error) {
		c, created, err := s.stock.CreateReservation(ctx, tx, o.ID, inventory.SKUs(o.Items),
			func(_ inventory.Reservation, stock map[string]inventory.Stock) (inventory.Change, error) {
				return inventory.Reserve(o, stock)
			})
		if err != nil || created {
			return c, err
		}
		return inventory.Change{Outcome: inventory.OutcomeIgnored}, nil
	})
}

// OrderCanceled releases a held reservation. For an order inventory never saw it stores a
// RELEASED marker that holds nothing, so that a late OrderCreated cannot reserve stock for a
// canceled order.
func (s *Steps) OrderCanceled(ctx context.Context, m *messaging.Message) error {
	var d orderCanceledData
	if err := m.DecodeData(&d); err != nil {
		return err
	}
	return s.apply(ctx, m, d.OrderID, func(ctx context.Context, tx *sql.Tx) (inventory.Change, error) {
		c, err := s.stock.UpdateReservation(ctx, tx, d.OrderID,
			func(r inventory.Reservation, stock map[string]inventory.Stock) (inventory.Change, error) {
				return inventory.Release(r, stock, d.Reason)
			})
		if !errors.Is(err, postgres.ErrNoReservation) {
			return c, err
		}
		c, _, err = s.stock.CreateReservation(ctx, tx, d.OrderID, nil,
			func(inventory.Reservation, map[string]inventory.Stock) (inventory.Change, error) {
				return inventory.CancelUnseen(d.OrderID, d.Items, d.Reason), nil
			})
		return c, err
	})
}

// OrderCompleted commits a held reservation. An order without one cannot have completed
// through this saga; the event is recorded in the inbox and otherwise ignored.
func (s *Steps) OrderCompleted(ctx context.Context, m *messaging.Message) error {
	var d orderCompletedData
	if err := m.DecodeData(&d); err != nil {
		return err
	}
	return s.apply(ctx, m, d.OrderID, func(ctx context.Context, tx *sql.Tx) (inventory.Change, error) {
		c, err := s.stock.UpdateReservation(ctx, tx, d.OrderID, inventory.Commit)
		if errors.Is(err, postgres.ErrNoReservation) {
			zerolog.Ctx(ctx).Warn().Msg("OrderCompleted for an order without reservation; ignored")
			return inventory.Change{Outcome: inventory.OutcomeIgnored}, nil
		}
		return c, err
	})
}

// step decides and persists what one event does to the order's reservation inside tx.
type step func(ctx context.Context, tx *sql.Tx) (inventory.Change, error)

// apply runs st in one transaction with the inbox check and writes the events st decided to
// the outbox (keyed by orderID, in the trace of m); once that transaction committed (a batch's,
// in a batch) it counts and logs the outcome through the message's logger. Any error is left
// retryable: the database's (an outage, a serialization failure or deadlock) until the database
// answers, a broken invariant (fault.Internal) until the consumer's attempts run out and it is
// dead-lettered.
func (s *Steps) apply(ctx context.Context, m *messaging.Message, orderID string, st step) error {
	var c inventory.Change
	run := msgpg.Transactional(s.db, func(ctx context.Context, tx *sql.Tx, m *messaging.Message) (err error) {
		if c, err = st(ctx, tx); err != nil {
			return err
		}
		_, err = s.outbox.EmitFor(ctx, tx, m, inventory.AggregateType, orderID, inventory.EventVersion, c.Events...)
		return err
	})
	if err := run(ctx, m); err != nil {
		return fmt.Errorf("%s %s: %w", m.EventType, m.EventID, err)
	}
	messaging.AfterCommit(ctx, func() {
		log := zerolog.Ctx(ctx)
		if c.Outcome == "" {
			log.Info().Msg("saga step skipped: event already processed")
			return
		}
		s.metrics.observe(c.Outcome)
		log.Info().Str("outcome", string(c.Outcome)).Str("status", string(c.Reservation.Status)).Msg("saga step done")
	})
	return nil
}

// orderCreatedData is the data of OrderCreated v1.
type orderCreatedData struct {
	OrderID      string           `json:"orderId"`
	CustomerID   string           `json:"customerId"`
	Items        []inventory.Item `json:"items"`
	Amount       int64            `json:"amount"`
	Currency     string           `json:"currency"`
	PaymentToken string           `json:"paymentToken"`
}

// orderCanceledData is the data of OrderCanceled v1.
type orderCanceledData struct {
	OrderID string           `json:"orderId"`
	Reason  string           `json:"reason"`
	Items   []inventory.Item `json:"items"`
}

// orderCompletedData is the data of OrderCompleted v1.
type orderCompletedData struct {
	OrderID  string           `json:"orderId"`
	Items    []inventory.Item `json:"items"`
	Amount   int64            `json:"amount"`
	Currency string           `json:"currency"`
}

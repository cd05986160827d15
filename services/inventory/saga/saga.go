// Package saga holds the inventory service's saga steps: one handler per order event it
// consumes (OrderCreated, OrderCanceled, OrderCompleted) and the Router that lists them.
//
// Every step runs in one transaction with the inbox check (postgres.Transactional): the event
// id, the reservation, the stock moves and the outbox rows commit together or not at all. The
// domain (package inventory) decides; the steps load, persist and emit.
package saga

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/inventory"
	"outboxsaga.dev/inventory/postgres"
	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	messagingpg "outboxsaga.dev/messaging/postgres"
)

// Event types consumed from order-events, all at version 1.
const (
	OrderCreated   = "OrderCreated"
	OrderCanceled  = "OrderCanceled"
	OrderCompleted = "OrderCompleted"
)

// maxTxAttempts bounds how often a step's transaction is run again after a serialization
// failure or deadlock, before the error goes to the consumer's own retry.
const maxTxAttempts = 3

// NewRouter returns the Router of the inventory saga: exactly the three order events. Anything
// else on order-events is poison for this service and is dead-lettered. Metrics are registered
// on reg.
func NewRouter(db *sql.DB, outbox *messagingpg.Outbox, log zerolog.Logger, reg prometheus.Registerer) (*messaging.Router, error) {
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &steps{db: db, outbox: outbox, log: log, metrics: m}
	r := messaging.NewRouter()
	r.Handle(OrderCreated, 1, s.handler(s.orderCreated))
	r.Handle(OrderCanceled, 1, s.handler(s.orderCanceled))
	r.Handle(OrderCompleted, 1, s.handler(s.orderCompleted))
	return r, nil
}

// steps holds what the saga steps share.
type steps struct {
	db      *sql.DB
	outbox  *messagingpg.Outbox
	log     zerolog.Logger
	metrics *metrics
}

// step decides and persists one event inside tx and returns what it decided; handler emits the
// decided events in the same tx.
type step func(ctx context.Context, tx *sql.Tx, m *messaging.Message) (inventory.Change, error)

// handler turns a step into a messaging.Handler: inbox check, step, outbox rows in one
// transaction (run again on a serialization failure or deadlock), then the log line and the
// metric once it committed.
func (s *steps) handler(st step) messaging.Handler {
	return func(ctx context.Context, m *messaging.Message) error {
		var c inventory.Change
		run := messagingpg.Transactional(s.db, func(ctx context.Context, tx *sql.Tx, m *messaging.Message) error {
			var err error
			if c, err = st(ctx, tx, m); err != nil {
				return err
			}
			return s.emit(ctx, tx, m, c.Events)
		})
		log := s.log.With().Str("orderId", m.AggregateID).Str("eventId", m.EventID).
			Str("eventType", m.EventType).Str("traceId", m.TraceID).Logger()
		for attempt := 1; ; attempt++ {
			c = inventory.Change{}
			err := run(ctx, m)
			if err == nil {
				break
			}
			if !postgres.IsTransient(err) || attempt == maxTxAttempts {
				return classify(fmt.Errorf("%s %s: %w", m.EventType, m.EventID, err))
			}
			log.Debug().Err(err).Int("attempt", attempt).Msg("transaction conflict; running it again")
		}
		if c.Outcome == "" {
			log.Info().Msg("saga step skipped: event already processed")
			return nil
		}
		s.metrics.observe(c.Outcome)
		log.Info().Str("outcome", string(c.Outcome)).Str("status", string(c.Reservation.Status)).Msg("saga step done")
		return nil
	}
}

// classify marks domain errors (bad event data, a broken invariant) Permanent: they fail the
// same way on every attempt, so the message goes straight to the dead letters. Everything else
// (the database is down, a conflict that outlived maxTxAttempts) stays retryable.
func classify(err error) error {
	if _, ok := errors.AsType[*fault.Error](err); ok {
		return messaging.Permanent(err)
	}
	return err
}

// orderCreated reserves the order's items, all or nothing, unless inventory has seen the order
// before (a redelivery under a new event id, or an OrderCanceled that came first).
func (s *steps) orderCreated(ctx context.Context, tx *sql.Tx, m *messaging.Message) (inventory.Change, error) {
	var d orderCreatedData
	if err := decodeData(m, &d); err != nil {
		return inventory.Change{}, err
	}
	o := inventory.Order{ID: d.OrderID, Items: d.Items, Amount: d.Amount, Currency: d.Currency, PaymentToken: d.PaymentToken}
	c, created, err := postgres.CreateReservation(ctx, tx, o.ID, inventory.SKUs(o.Items),
		func(_ inventory.Reservation, stock map[string]inventory.Stock) (inventory.Change, error) {
			return inventory.Reserve(o, stock)
		})
	if err != nil {
		return inventory.Change{}, err
	}
	if !created {
		return inventory.Change{Outcome: inventory.OutcomeIgnored}, nil
	}
	return c, nil
}

// orderCanceled releases a held reservation. For an order inventory never saw it stores a
// RELEASED marker that holds nothing, so that a late OrderCreated cannot reserve stock for a
// canceled order.
func (s *steps) orderCanceled(ctx context.Context, tx *sql.Tx, m *messaging.Message) (inventory.Change, error) {
	var d orderCanceledData
	if err := decodeData(m, &d); err != nil {
		return inventory.Change{}, err
	}
	c, err := postgres.UpdateReservation(ctx, tx, d.OrderID,
		func(r inventory.Reservation, stock map[string]inventory.Stock) (inventory.Change, error) {
			return inventory.Release(r, stock, d.Reason)
		})
	if !errors.Is(err, postgres.ErrNoReservation) {
		return c, err
	}
	c, _, err = postgres.CreateReservation(ctx, tx, d.OrderID, nil,
		func(inventory.Reservation, map[string]inventory.Stock) (inventory.Change, error) {
			return inventory.CancelUnseen(d.OrderID, d.Items, d.Reason), nil
		})
	return c, err
}

// orderCompleted commits a held reservation. An order without one cannot have completed
// through this saga; the event is recorded in the inbox and otherwise ignored.
func (s *steps) orderCompleted(ctx context.Context, tx *sql.Tx, m *messaging.Message) (inventory.Change, error) {
	var d orderCompletedData
	if err := decodeData(m, &d); err != nil {
		return inventory.Change{}, err
	}
	c, err := postgres.UpdateReservation(ctx, tx, d.OrderID, func(r inventory.Reservation, stock map[string]inventory.Stock) (inventory.Change, error) {
		return inventory.Commit(r, stock)
	})
	if errors.Is(err, postgres.ErrNoReservation) {
		s.log.Warn().Str("orderId", d.OrderID).Str("eventId", m.EventID).Str("traceId", m.TraceID).
			Msg("OrderCompleted for an order without reservation; ignored")
		return inventory.Change{Outcome: inventory.OutcomeIgnored}, nil
	}
	return c, err
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

func (d *orderCreatedData) orderID() string   { return d.OrderID }
func (d *orderCanceledData) orderID() string  { return d.OrderID }
func (d *orderCompletedData) orderID() string { return d.OrderID }

// orderData is the data of an order event.
type orderData interface {
	orderID() string
}

// decodeData unmarshals m's data into d and checks that the order it names is the event's
// aggregate id. Schema validation happened in the consumer; this guards against an envelope
// that is valid but contradicts itself.
func decodeData(m *messaging.Message, d orderData) error {
	if err := json.Unmarshal(m.Data, d); err != nil {
		return fault.Errorf(fault.Invalid, "data of %s %s: %s", m.EventType, m.EventID, err)
	}
	if d.orderID() == "" || d.orderID() != m.AggregateID {
		return fault.Errorf(fault.Invalid, "%s %s: data.orderId %q is not the aggregate id %q", m.EventType, m.EventID, d.orderID(), m.AggregateID)
	}
	return nil
}

// emit writes events to the outbox in tx, each as a child span of the event that caused it.
func (s *steps) emit(ctx context.Context, tx *sql.Tx, m *messaging.Message, events []inventory.Event) error {
	for _, e := range events {
		env, tp, err := envelope(m, e)
		if err != nil {
			return err
		}
		if err := s.outbox.Insert(ctx, tx, env, tp); err != nil {
			return err
		}
	}
	return nil
}

// envelope wraps e for the outbox: key = the order id, in the trace of the event m that caused
// it. A message without a usable traceparent header continues the trace of its envelope.
func envelope(m *messaging.Message, e inventory.Event) (messaging.Envelope, messaging.Traceparent, error) {
	tp := m.Traceparent.Child()
	if m.Traceparent.IsZero() || m.Traceparent.TraceID() != m.TraceID {
		var err error
		if tp, err = messaging.NewTraceparentIn(m.TraceID); err != nil {
			tp = messaging.NewTraceparent()
		}
	}
	env, err := messaging.NewEnvelope(inventory.AggregateType, m.AggregateID, e.Type, inventory.EventVersion, e.Data, tp)
	if err != nil {
		return messaging.Envelope{}, messaging.Traceparent{}, fmt.Errorf("emit %s for order %s: %w", e.Type, m.AggregateID, err)
	}
	return env, tp, nil
}

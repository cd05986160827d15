// Package app holds the inventory service's use cases on reservations, which its saga steps
// call: reserve a new order's items (OrderCreated), release them (OrderCanceled), sell them
// (OrderCompleted). Each runs in the caller's transaction and returns the events to emit with
// what to report once committed (messaging/postgres.Result). The domain (package inventory)
// decides; the use cases load, persist and count.
package app

import (
	"context"
	"database/sql"
	"errors"

	"github.com/rs/zerolog"

	"outboxsaga.dev/inventory"
	"outboxsaga.dev/inventory/postgres"
	msgpg "outboxsaga.dev/messaging/postgres"
)

// Reservations is where the use cases keep the orders' reservations and move their stock, in
// the caller's transaction; *postgres.Reservations implements it.
type Reservations interface {
	Create(ctx context.Context, tx *sql.Tx, orderID string, skus []string, decide postgres.Decide) (c inventory.Change, created bool, err error)
	Update(ctx context.Context, tx *sql.Tx, orderID string, decide postgres.Decide) (inventory.Change, error)
}

// Result is what a use case decided: the order's events and what to report (msgpg.Result), and
// the StockDepleted/StockReplenished events of the SKUs it moved across 0, each to be emitted
// under its SKU as aggregate id in the same transaction.
type Result struct {
	msgpg.Result
	Stock []inventory.StockEvent
}

// App is the inventory service's use cases on reservations.
type App struct {
	reservations Reservations
	metrics      *Metrics
}

// New returns the use cases over reservations, counting their decisions on metrics.
func New(reservations Reservations, metrics *Metrics) *App {
	return &App{reservations: reservations, metrics: metrics}
}

// Reserve reserves o's items, all or nothing, unless inventory has seen the order before (a
// redelivery under a new event id, or an OrderCanceled that came first). An order the domain
// refuses is a fault.Invalid.
func (a *App) Reserve(ctx context.Context, tx *sql.Tx, o inventory.Order) (Result, error) {
	if err := o.Validate(); err != nil {
		return Result{}, err
	}
	c, created, err := a.reservations.Create(ctx, tx, o.ID, inventory.SKUs(o.Items),
		func(_ inventory.Reservation, stock map[string]inventory.Stock) (inventory.Change, error) {
			return inventory.Reserve(o, stock)
		})
	if err == nil && !created {
		c = inventory.Change{Outcome: inventory.OutcomeIgnored}
	}
	return a.result(c), err
}

// Release releases the held reservation of a canceled order. For an order inventory never saw
// it stores a RELEASED marker that holds nothing, so that a late OrderCreated cannot reserve
// stock for a canceled order.
func (a *App) Release(ctx context.Context, tx *sql.Tx, orderID string, items []inventory.Item, reason string) (Result, error) {
	c, err := a.reservations.Update(ctx, tx, orderID,
		func(r inventory.Reservation, stock map[string]inventory.Stock) (inventory.Change, error) {
			return inventory.Release(r, stock, reason)
		})
	if errors.Is(err, postgres.ErrNoReservation) {
		c, _, err = a.reservations.Create(ctx, tx, orderID, nil,
			func(inventory.Reservation, map[string]inventory.Stock) (inventory.Change, error) {
				return inventory.CancelUnseen(orderID, items, reason), nil
			})
	}
	return a.result(c), err
}

// Commit sells the held reservation of a completed order. An order without one cannot have
// completed through this saga: nothing changes (logged).
func (a *App) Commit(ctx context.Context, tx *sql.Tx, orderID string) (Result, error) {
	c, err := a.reservations.Update(ctx, tx, orderID, inventory.Commit)
	if errors.Is(err, postgres.ErrNoReservation) {
		zerolog.Ctx(ctx).Warn().Msg("OrderCompleted for an order without reservation; ignored")
		c, err = inventory.Change{Outcome: inventory.OutcomeIgnored}, nil
	}
	return a.result(c), err
}

// result is what a change emits and, once committed, counts and logs through the message's
// logger. Any error of a use case is left retryable: the database's (an outage, a serialization
// failure or deadlock) until the database answers, a broken invariant (fault.Internal) until
// the consumer's attempts run out and it is dead-lettered.
func (a *App) result(c inventory.Change) Result {
	return Result{Stock: c.StockEvents, Result: msgpg.Result{Events: c.Events, Done: func(log *zerolog.Logger) {
		a.metrics.observe(c.Outcome)
		for _, se := range c.StockEvents {
			log.Info().Str("sku", se.SKU).Str("event", se.Event.Type).Msg("stock transition")
		}
		log.Info().Str("outcome", string(c.Outcome)).Str("status", string(c.Reservation.Status)).Msg("saga step done")
	}}}
}

package app

import (
	"context"
	"time"

	"github.com/google/uuid"

	"outboxsaga.dev/messaging/customer"
	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/order"
)

// The reads of an order answer a caller that may not read it (another customer's order) as they
// answer a missing order, with a fault.NotFound, so that order ids tell nobody else anything.

// Order returns order id as it is now.
func (a *App) Order(ctx context.Context, caller customer.Caller, id uuid.UUID) (order.Order, error) {
	return visible(caller, id)(a.orders.Get(ctx, id))
}

// OrderAsOf returns order id as it was at t: the fold of its events up to then.
func (a *App) OrderAsOf(ctx context.Context, caller customer.Caller, id uuid.UUID, t time.Time) (order.Order, error) {
	return visible(caller, id)(a.events.AsOf(ctx, id, t))
}

// Timeline returns every event recorded for order id, emitted or consumed, in the order they
// were recorded.
func (a *App) Timeline(ctx context.Context, caller customer.Caller, id uuid.UUID) ([]order.TimelineEntry, error) {
	if err := a.owned(ctx, caller, id); err != nil {
		return nil, err
	}
	return a.orders.Timeline(ctx, id)
}

// History returns the order's own events from the event store, in seq order, payment tokens
// redacted.
func (a *App) History(ctx context.Context, caller customer.Caller, id uuid.UUID) ([]order.HistoryEntry, error) {
	if err := a.owned(ctx, caller, id); err != nil {
		return nil, err
	}
	return a.events.History(ctx, id)
}

// visible passes on a read of order id that caller may see, and refuses one it may not.
func visible(caller customer.Caller, id uuid.UUID) func(order.Order, error) (order.Order, error) {
	return func(o order.Order, err error) (order.Order, error) {
		if err == nil {
			err = readable(caller, id, o.CustomerID)
		}
		if err != nil {
			return order.Order{}, err
		}
		return o, nil
	}
}

// owned checks that caller may read order id.
func (a *App) owned(ctx context.Context, caller customer.Caller, id uuid.UUID) error {
	owner, err := a.orders.CustomerOf(ctx, id)
	if err != nil {
		return err
	}
	return readable(caller, id, owner)
}

// readable refuses caller an order of another customer than owner with the answer a missing
// order gets.
func readable(caller customer.Caller, id uuid.UUID, owner string) error {
	if !caller.Owns(owner) {
		return fault.Errorf(fault.NotFound, "order %s not found", id)
	}
	return nil
}

// SetPrice sets a SKU's price (an operator's) and returns it as stored; orders placed before keep
// the price they were placed at. A price out of bounds is a fault.Invalid.
func (a *App) SetPrice(ctx context.Context, p order.Price) (order.Price, error) {
	return a.prices.Set(ctx, p)
}

// Price returns a SKU's price; a SKU out of bounds is a fault.Invalid, one without a price a
// fault.NotFound.
func (a *App) Price(ctx context.Context, sku string) (order.Price, error) {
	if err := order.ValidateSKU(sku); err != nil {
		return order.Price{}, err
	}
	return a.prices.Get(ctx, sku)
}

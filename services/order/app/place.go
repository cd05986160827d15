package app

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/customer"
	"outboxsaga.dev/messaging/fault"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/order"
)

// CodeTooManyOpenOrders is the code a customer sees when it has MaxOpenOrders orders PENDING (429).
const CodeTooManyOpenOrders = "too_many_open_orders"

// openOrdersRetryAfter is the Retry-After of CodeTooManyOpenOrders: a saga ends in well under a
// second when the pipeline is well, and by the saga deadline at worst.
const openOrdersRetryAfter = time.Second

// PlaceOrder is a customer's request for a new order.
type PlaceOrder struct {
	// Caller is who asks: the draft's customer must be the caller's.
	Caller customer.Caller
	Draft  order.Draft
	// Trace is the span OrderCreated is emitted in.
	Trace       messaging.Traceparent
	Idempotency order.Idempotency
}

// Placed is what PlaceOrder did.
type Placed struct {
	// Order is the new order; on a replay of an earlier request, only its ID is set.
	Order order.Order
	// Created is the OrderCreated emitted; zero on a replay.
	Created messaging.Envelope
}

// Replayed reports whether the request was a retry of one that placed Order before.
func (p Placed) Replayed() bool { return p.Created.EventID == "" }

// PlaceOrder places an order at the list prices: the order, its items, its timeline entry and
// OrderCreated commit in one transaction. The draft is checked first (a fault.Invalid naming the
// field), then whose it is: a draft of another customer than the caller is a fault.Forbidden.
// With an idempotency key, a retry of the same request by the same customer returns the order
// placed first and writes nothing; the same key with another request is a fault.Conflict that
// names no order. A customer with MaxOpenOrders orders PENDING is refused (fault.Limited).
func (a *App) PlaceOrder(ctx context.Context, cmd PlaceOrder) (Placed, error) {
	d := cmd.Draft
	if err := d.Validate(); err != nil {
		return Placed{}, err
	}
	if d.CustomerID != cmd.Caller.Customer {
		return Placed{}, fault.Errorf(fault.Forbidden, "customerId %q is not the customer of the token", excerpt(d.CustomerID))
	}
	idem := cmd.Idempotency
	var out Placed
	err := msgpg.WithTx(ctx, a.db, func(tx *sql.Tx) error {
		out = Placed{}
		if idem.Key != "" {
			replay, err := a.replay(ctx, tx, d.CustomerID, idem)
			if fault.Code(err) != fault.NotFound {
				out = replay
				return err
			}
		}
		if err := a.inStock(ctx, tx, d.SKUs()); err != nil {
			return err
		}
		if err := a.underOpenCap(ctx, tx, d.CustomerID); err != nil {
			return err
		}
		prices, err := a.prices.Of(ctx, tx, d.SKUs())
		if err != nil {
			return err
		}
		now := a.clock()
		placed, e, err := order.New(uuid.New(), d, prices, now, a.deadline)
		if err != nil {
			return err
		}
		if a.createdVersion == 1 {
			e = order.CreatedV1(e)
		}
		decided, err := order.Decide(order.Order{}, cmd.Trace, e, a.createdVersion, now,
			order.Meta{DeadlineAt: placed.DeadlineAt, IdempotencyKey: idem.Key, RequestHash: idem.RequestHash}, a.events.Upcaster())
		if err != nil {
			return err
		}
		inserted, err := a.orders.Insert(ctx, tx, decided.State, idem)
		if err != nil {
			return err
		}
		if !inserted {
			// Insert waited for a concurrent first use of the key to commit: the order is there.
			out, err = a.replay(ctx, tx, d.CustomerID, idem)
			return err
		}
		out = Placed{Order: decided.State, Created: decided.Envelope}
		return a.emit(ctx, tx, decided)
	})
	if err != nil {
		return Placed{}, fmt.Errorf("place order: %w", err)
	}
	return out, nil
}

// inStock refuses an order for a SKU the service knows is sold out (order.SoldOut, 409
// sold_out) before any saga starts. It knows only what StockDepleted and StockReplenished told
// it: in the window before it hears, the order is placed and its saga ends OUT_OF_STOCK.
func (a *App) inStock(ctx context.Context, tx *sql.Tx, skus []string) error {
	if a.availability == nil {
		return nil
	}
	sku, found, err := a.availability.FirstSoldOut(ctx, tx, skus)
	if err != nil {
		return err
	}
	if found {
		return order.SoldOut(sku)
	}
	return nil
}

// StockChanged records that the inventory sold sku out (soldOut) or has it again, as of at (the
// event's occurredAt): StockDepleted and StockReplenished. An older state than the one known is
// ignored (applied=false).
func (a *App) StockChanged(ctx context.Context, tx *sql.Tx, sku string, soldOut bool, at time.Time) (applied bool, err error) {
	if a.availability == nil {
		return false, nil
	}
	return a.availability.Set(ctx, tx, sku, soldOut, at)
}

// replay returns the order customer placed with idem's key, if the request is the same as then;
// the error is a fault.NotFound when the key is new, and a fault.Conflict that names no order
// when it came with another request.
func (a *App) replay(ctx context.Context, tx *sql.Tx, customer string, idem order.Idempotency) (Placed, error) {
	prev, hash, err := a.orders.ByIdempotencyKey(ctx, tx, customer, idem.Key)
	if err != nil {
		return Placed{}, err
	}
	if hash != idem.RequestHash {
		return Placed{}, fault.Errorf(fault.Conflict, "Idempotency-Key %q was already used for a different request; send a new key for a new order", idem.Key)
	}
	return Placed{Order: order.Order{ID: prev}}, nil
}

// underOpenCap refuses a new order of a customer that has maxOpen orders PENDING (429). The count
// is taken under a per-customer lock held to the end of tx, so concurrent orders of one customer
// cannot pass the cap together.
func (a *App) underOpenCap(ctx context.Context, tx *sql.Tx, customerID string) error {
	if a.maxOpen <= 0 {
		return nil
	}
	n, err := a.orders.OpenOrders(ctx, tx, customerID)
	if err != nil {
		return err
	}
	if n >= a.maxOpen {
		return fault.Limited(CodeTooManyOpenOrders, openOrdersRetryAfter,
			"customer %q has %d orders in progress, the most allowed; try again when one has ended", excerpt(customerID), n)
	}
	return nil
}

// excerpt shortens a client's value for an error message.
func excerpt(s string) string {
	if r := []rune(s); len(r) > 70 {
		return string(r[:70]) + "…"
	}
	return s
}

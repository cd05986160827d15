package app

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/order"
)

// Consumed is an event another service emitted about an order, as a saga step hands it over.
type Consumed struct {
	OrderID uuid.UUID
	// Entry is the event as the order's timeline records it (Source: the topic it came from).
	Entry order.TimelineEntry
	// Trace is the span an event the order emits in answer is emitted in.
	Trace messaging.Traceparent
}

// Payment is what a payment event says of the payment: the terms it checks against the order.
type Payment struct {
	Amount   int64
	Currency string
}

// Outcome is what applying a consumed event did, for the log and the metrics once its
// transaction committed.
type Outcome struct {
	Order order.Order // the order after the event
	// Emitted is the event the order emitted in answer; zero when none.
	Emitted messaging.Envelope
	// Ignored: the event would have moved the order, but it had ended already (a late event,
	// recorded in the timeline and otherwise ignored).
	Ignored bool
}

// Ended reports whether the event ended the order's saga (it emitted OrderCompleted or
// OrderCanceled).
func (o Outcome) Ended() bool { return o.Emitted.EventID != "" }

// StockReservationFailed cancels the order as OUT_OF_STOCK: inventory reserved nothing, so there
// is nothing to compensate, but OrderCanceled tells payment not to charge.
func (a *App) StockReservationFailed(ctx context.Context, tx *sql.Tx, ev Consumed) (Outcome, error) {
	return a.apply(ctx, tx, ev, nil, func(o *order.Order, now time.Time) (messaging.Event, bool) {
		return o.Cancel(order.ReasonOutOfStock, now)
	})
}

// PaymentAuthorized completes the order; OrderCompleted tells inventory to commit the
// reservation. A payment of another amount or currency than the order's is a fault.Invalid.
func (a *App) PaymentAuthorized(ctx context.Context, tx *sql.Tx, ev Consumed, p Payment) (Outcome, error) {
	return a.apply(ctx, tx, ev, p.check, func(o *order.Order, now time.Time) (messaging.Event, bool) {
		return o.Complete(now)
	})
}

// PaymentFailed cancels the order as PAYMENT_FAILED; OrderCanceled tells inventory to release
// the reservation. A payment of another amount or currency than the order's is a fault.Invalid.
func (a *App) PaymentFailed(ctx context.Context, tx *sql.Tx, ev Consumed, p Payment) (Outcome, error) {
	return a.apply(ctx, tx, ev, p.check, func(o *order.Order, now time.Time) (messaging.Event, bool) {
		return o.Cancel(order.ReasonPaymentFailed, now)
	})
}

// PaymentVoided records the void in the order's timeline, if it is of the order's payment (else
// a fault.Invalid).
func (a *App) PaymentVoided(ctx context.Context, tx *sql.Tx, ev Consumed, p Payment) (Outcome, error) {
	return a.apply(ctx, tx, ev, p.check, nil)
}

// Record adds an event that changes nothing about the order (StockReserved, StockReleased,
// StockCommitted) to the order's timeline. It neither loads nor locks the order (Outcome.Order
// is zero): there is nothing to decide, so it need not wait for a step that decides. An event of
// an order not found is a fault.NotFound, retried as in apply.
func (a *App) Record(ctx context.Context, tx *sql.Tx, ev Consumed) (Outcome, error) {
	ok, err := a.orders.RecordIfExists(ctx, tx, ev.OrderID, ev.Entry)
	if err != nil {
		return Outcome{}, err
	}
	if !ok {
		return Outcome{}, fault.Errorf(fault.NotFound, "order %s not found", ev.OrderID)
	}
	return Outcome{}, nil
}

// DeliveryReached records that the order's delivery reached d (DeliveryScheduled, DeliveryShipped,
// DeliveryDelivered), forward only (a late or replayed event changes nothing), and adds the event
// to the order's timeline. A delivery of an order that is not COMPLETED is a fault.Invalid.
func (a *App) DeliveryReached(ctx context.Context, tx *sql.Tx, ev Consumed, d order.Delivery) (Outcome, error) {
	return a.apply(ctx, tx, ev, func(o *order.Order, now time.Time) error {
		_, err := o.Track(d, now)
		return err
	}, nil)
}

// check checks the payment's terms against the order's.
func (p Payment) check(o *order.Order, _ time.Time) error {
	return o.CheckPayment(p.Amount, p.Currency)
}

// check is what a use case verifies of the event against the locked order, or records on it,
// before it decides.
type check func(o *order.Order, now time.Time) error

// decision is what a use case does to a locked order at now: the event to emit, and false when
// the order is terminal and the event is ignored.
type decision func(o *order.Order, now time.Time) (messaging.Event, bool)

// apply runs verify (nil: none) and decide (nil: only record) on the order ev is about, in tx:
// the order is locked, verify and decide run on a scratch copy, and what is written is the fold
// of the locked order and what happened: the projection, the consumed event in the timeline
// (for a delivery event that moved the delivery, as the fact the fold reads, at now), and the
// event decided (emit).
func (a *App) apply(ctx context.Context, tx *sql.Tx, ev Consumed, verify check, decide decision) (Outcome, error) {
	now := a.clock()
	m := ev.Entry
	before, err := a.orders.Lock(ctx, tx, ev.OrderID)
	if err != nil {
		// A fault.NotFound is retried, not poison at first sight (messaging.Classify): the order may
		// be committed and yet not visible here. Postgres flushes a commit record to the WAL before
		// it makes the transaction visible to other sessions, and a WAL sender may decode and ship
		// it in between; on a loaded box an event caused by the order (its StockReserved, ~130 ms
		// later) once arrived inside that window and was dead-lettered
		// (docs/chaos/run-2026-12-01-batches-FAIL.md). Retry tries again with backoff; an event of
		// an order that really does not exist is dead-lettered when its attempts are spent.
		return Outcome{}, err
	}
	scratch := before
	if verify != nil {
		if err := verify(&scratch, now); err != nil {
			return Outcome{}, fmt.Errorf("update order %s: %w", ev.OrderID, err)
		}
	}
	var (
		e       messaging.Event
		changed bool
	)
	if decide != nil {
		e, changed = decide(&scratch, now)
	}
	after := before
	if _, ok := order.DeliveryOf(m.EventType); ok && scratch.Delivery != before.Delivery {
		m.RecordedAt = now
		if err := after.Apply(order.Recorded{EventID: m.EventID, EventType: m.EventType, OccurredAt: now}, a.events.Upcaster()); err != nil {
			return Outcome{}, err
		}
	}
	out := Outcome{Ignored: decide != nil && !changed}
	var decided order.Decided
	if changed {
		if decided, err = order.Decide(after, ev.Trace, e, order.EventVersion, now, order.Meta{}, a.events.Upcaster()); err != nil {
			return Outcome{}, err
		}
		after, out.Emitted = decided.State, decided.Envelope
	}
	if err := a.orders.Save(ctx, tx, before, after); err != nil {
		return Outcome{}, err
	}
	if err := a.orders.Record(ctx, tx, ev.OrderID, m); err != nil {
		return Outcome{}, err
	}
	if changed {
		if err := a.emit(ctx, tx, decided); err != nil {
			return Outcome{}, err
		}
	}
	out.Order = after
	return out, nil
}

package app

import (
	"context"
	"database/sql"

	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/order"
)

// SweepBatch is how many expired orders one SweepDeadlines transaction cancels at most, to keep
// its locks short.
const SweepBatch = 100

// Ended is an order that SweepDeadlines canceled and the OrderCanceled it emitted.
type Ended struct {
	Order order.Order
	Event messaging.Envelope
}

// SweepDeadlines cancels, in one transaction, up to SweepBatch orders whose saga did not end
// before their deadline (reason TIMEOUT), and returns them. The OrderCanceled each emits makes
// inventory release and payment void what they did, as for any other cancel. Several instances
// may sweep at once: each skips the orders another has locked.
func (a *App) SweepDeadlines(ctx context.Context) ([]Ended, error) {
	now := a.clock()
	var done []Ended
	err := msgpg.WithTx(ctx, a.db, func(tx *sql.Tx) error {
		done = done[:0]
		expired, err := a.orders.LockExpired(ctx, tx, now, SweepBatch)
		if err != nil {
			return err
		}
		for _, before := range expired {
			scratch := before
			e, ok := scratch.Cancel(order.ReasonTimeout, now)
			if !ok {
				continue // only PENDING orders are selected; kept for safety
			}
			d, err := order.Decide(before, traceOf(before), e, order.EventVersion, now, order.Meta{}, a.events.Upcaster())
			if err != nil {
				return err
			}
			if err := a.orders.Save(ctx, tx, before, d.State); err != nil {
				return err
			}
			if err := a.emit(ctx, tx, d); err != nil {
				return err
			}
			done = append(done, Ended{Order: d.State, Event: d.Envelope})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return done, nil
}

// traceOf returns a new span in o's saga trace, so a timeout shows in the trace of the order.
func traceOf(o order.Order) messaging.Traceparent {
	if tp, err := messaging.NewTraceparentIn(o.TraceID); err == nil {
		return tp
	}
	return messaging.NewTraceparent()
}

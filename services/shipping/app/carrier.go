package app

import (
	"context"
	"database/sql"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/tracing"
	"outboxsaga.dev/shipping"
)

// carrierBatch is how many deliveries one carrier transaction moves at most, to keep its locks
// short.
const carrierBatch = 100

// Carry is the carrier simulator, a part of the service: until ctx is done (then it returns
// nil) it moves every delivery that has stayed in its status for a step one step forward,
// PREPARING → SHIPPED → DELIVERED, looking four times a step (at least every 10 ms, at most
// every second). A failed look is logged and tried again at the next one.
//
// Several carriers may run at once (several instances of the service): each skips the
// deliveries another holds, and none moves a delivery that is no longer due, so every step
// happens once (see postgres.Deliveries.UpdateDue).
func (s *App) Carry(ctx context.Context) error {
	look := min(max(s.every/4, 10*time.Millisecond), time.Second)
	for {
		n, err := s.AdvanceDue(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error().Err(err).Msg("carrier: moving the due deliveries failed")
		}
		wait := look
		if n == carrierBatch {
			wait = 0 // a full batch: more may be due
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// AdvanceDue moves up to one batch of due deliveries one step, in one transaction with their
// events, and returns how many it moved.
func (s *App) AdvanceDue(ctx context.Context) (int, error) {
	now := time.Now()
	var moved []shipping.Delivery
	err := msgpg.WithTx(ctx, s.db, func(tx *sql.Tx) (err error) {
		moved, err = s.deliveries.UpdateDue(ctx, tx, now.Add(-s.every), carrierBatch, func(d *shipping.Delivery) error {
			return s.move(ctx, tx, d, now)
		})
		return err
	})
	if err != nil {
		return 0, err
	}
	for _, d := range moved {
		s.moved(d, "carrier")
	}
	return len(moved), nil
}

// Advance moves the delivery of orderID one step at once, on an operator's say, with its
// event: a fault.NotFound error for an order without a delivery, a fault.Conflict for a
// DELIVERED one. It returns the delivery as moved.
func (s *App) Advance(ctx context.Context, orderID string) (shipping.Delivery, error) {
	var d shipping.Delivery
	err := msgpg.WithTx(ctx, s.db, func(tx *sql.Tx) (err error) {
		d, err = s.deliveries.Update(ctx, tx, orderID, func(d *shipping.Delivery) error {
			return s.move(ctx, tx, d, time.Now())
		})
		return err
	})
	if err != nil {
		return shipping.Delivery{}, err
	}
	s.moved(d, "operator")
	return d, nil
}

// move advances d one step and writes the event that says so in tx, in the order's trace.
func (s *App) move(ctx context.Context, tx *sql.Tx, d *shipping.Delivery, now time.Time) error {
	ctx, span := s.outbox.Tracer.Start(ctx, "carrier move", d.Parent(), trace.SpanKindInternal,
		attribute.String("delivery.id", d.ID), attribute.String("delivery.from", string(d.Status)))
	e, err := d.Advance(now)
	if err == nil {
		_, err = s.outbox.Emit(ctx, tx, d.Parent().Child(), shipping.AggregateType, d.OrderID, shipping.EventVersion, e)
	}
	tracing.End(span, err)
	return err
}

// moved counts and logs a committed move.
func (s *App) moved(d shipping.Delivery, by string) {
	s.metrics.reached(d)
	s.log.Info().Str("orderId", d.OrderID).Str("deliveryId", d.ID).Str("traceId", d.TraceID).
		Str("status", string(d.Status)).Str("by", by).Msg("delivery moved")
}

package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/order"
)

// Emit publishes e, an event of order o, in tx: it wraps e in an envelope in trace tp, writes it
// to the outbox (from where Debezium puts it on order-events) and records it in the order's
// timeline. It is the one way the order service emits an event. tp is the span of the step that
// emits, e.g. the incoming message's Traceparent.Child().
func (s *Orders) Emit(ctx context.Context, tx *sql.Tx, o order.Order, e order.Event, tp messaging.Traceparent) (messaging.Envelope, error) {
	env, err := s.outbox.Emit(ctx, tx, tp, order.AggregateType, o.ID.String(), e.Type, order.EventVersion, e.Data)
	if err != nil {
		return messaging.Envelope{}, fmt.Errorf("emit %s for order %s: %w", e.Type, o.ID, err)
	}
	err = s.Record(ctx, tx, o.ID, order.TimelineEntry{
		EventID:    env.EventID,
		EventType:  env.EventType,
		Source:     order.SourceSelf,
		OccurredAt: env.OccurredAt,
		Data:       env.Data,
	})
	if err != nil {
		return messaging.Envelope{}, err
	}
	return env, nil
}

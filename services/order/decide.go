package order

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"outboxsaga.dev/messaging"
)

// Decided is an event the order decided, ready to append to its event store, and the order it
// leads to.
type Decided struct {
	Envelope messaging.Envelope
	// Traceparent is the span the event is emitted in (the outbox's traceparent column).
	Traceparent messaging.Traceparent
	Record      Recorded
	State       Order // the order after the event (the fold of before and Record)
}

// Decide wraps e, the next event of order before (zero for a new order), in its envelope at time
// at (to the microsecond, as the database keeps it) in trace tp, and folds it into before with up
// (nil: no upcasting). version is e's version and meta what the event store keeps beside it. It
// writes nothing: the event store's Append does.
func Decide(before Order, tp messaging.Traceparent, e messaging.Event, version int, at time.Time, meta Meta, up Upcaster) (Decided, error) {
	id := before.ID
	if c, ok := e.Data.(CreatedData); ok && before.Version == 0 {
		var err error
		if id, err = uuid.Parse(c.OrderID); err != nil {
			return Decided{}, fmt.Errorf("decide %s: order id %q: %w", e.Type, c.OrderID, err)
		}
	}
	env, err := messaging.NewEnvelope(AggregateType, id.String(), e.Type, version, e.Data, tp)
	if err != nil {
		return Decided{}, fmt.Errorf("decide %s for order %s: %w", e.Type, id, err)
	}
	env.OccurredAt = at.UTC().Truncate(time.Microsecond)
	rec := Recorded{Seq: before.Version + 1, EventID: env.EventID, EventType: env.EventType, EventVersion: env.EventVersion,
		OccurredAt: env.OccurredAt, TraceID: env.TraceID, Data: env.Data, Meta: meta}
	state := before
	if err := state.Apply(rec, up); err != nil {
		return Decided{}, fmt.Errorf("decide %s for order %s: %w", e.Type, id, err)
	}
	return Decided{Envelope: env, Traceparent: tp, Record: rec, State: state}, nil
}

// Entry is the timeline entry of d: an event the order service emitted (Source SourceSelf).
func (d Decided) Entry() TimelineEntry {
	e := d.Envelope
	return TimelineEntry{EventID: e.EventID, EventType: e.EventType, Source: SourceSelf, OccurredAt: e.OccurredAt, Data: e.Data}
}

// Idempotency ties a new order to the client's Idempotency-Key (Key "" for none) and to a hash
// of the request it came with, so a retry can be told apart from a different request.
type Idempotency struct {
	Key         string
	RequestHash string
}

// HistoryEntry is one of an order's own events as its history shows it (GET /orders/{id}/history).
type HistoryEntry struct {
	Seq          int             `json:"seq"`
	EventID      string          `json:"eventId"`
	EventType    string          `json:"eventType"`
	EventVersion int             `json:"eventVersion"`
	OccurredAt   time.Time       `json:"occurredAt"`
	Data         json.RawMessage `json:"data"`
}

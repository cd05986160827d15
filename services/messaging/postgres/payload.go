package postgres

import (
	"encoding/json"
	"fmt"

	"outboxsaga.dev/messaging"
)

// Payload checks e as Insert does before it writes (a complete envelope, tp in e's trace, at
// most MaxEventBytes, its type's and version's JSON Schema) and returns the JSON that becomes the
// Kafka value, byte for byte. An event store that Debezium streams in place of the outbox (the
// order service's, docs/architecture.md "The order is event-sourced") writes what it returns.
func (o *Outbox) Payload(e messaging.Envelope, tp messaging.Traceparent) ([]byte, error) {
	if e.EventID == "" || e.EventType == "" || e.AggregateType == "" || e.AggregateID == "" {
		return nil, fmt.Errorf("check event %s %s: incomplete envelope", e.EventType, e.EventID)
	}
	if tp.IsZero() || tp.TraceID() != e.TraceID {
		return nil, fmt.Errorf("check event %s %s: traceparent %q is not in trace %q", e.EventType, e.EventID, tp, e.TraceID)
	}
	payload, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("check event %s %s: marshal: %w", e.EventType, e.EventID, err)
	}
	if len(payload) > MaxEventBytes {
		return nil, fmt.Errorf("check event %s %s: the event has %d bytes, more than %d", e.EventType, e.EventID, len(payload), MaxEventBytes)
	}
	if err := o.schemas.Validate(e.EventType, e.EventVersion, payload); err != nil {
		return nil, fmt.Errorf("check event %s %s: the event breaks its schema: %w", e.EventType, e.EventID, err)
	}
	return payload, nil
}

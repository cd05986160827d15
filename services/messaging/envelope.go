package messaging

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Envelope is the JSON document every event travels in: the Kafka value, and the outbox payload.
type Envelope struct {
	EventID        string          `json:"eventId"`
	EventType      string          `json:"eventType"`
	EventVersion   int             `json:"eventVersion"`
	AggregateType  string          `json:"aggregateType"`
	AggregateID    string          `json:"aggregateId"`
	OccurredAt     time.Time       `json:"occurredAt"`
	TraceID        string          `json:"traceId"`
	IdempotencyKey string          `json:"idempotencyKey"`
	Data           json.RawMessage `json:"data"`
}

// NewEnvelope builds the envelope of a new event: a random event id, the current time in UTC,
// the idempotency key <aggregateID>#<eventType>#<version> and the trace id of tp. data is
// marshaled to JSON. tp must be valid: pass the incoming message's Traceparent.Child() or, at a
// trace's start, NewTraceparent().
func NewEnvelope(aggregateType, aggregateID, eventType string, version int, data any, tp Traceparent) (Envelope, error) {
	if aggregateType == "" || aggregateID == "" || eventType == "" || version < 1 {
		return Envelope{}, fmt.Errorf("new envelope %s v%d for %s %q: type, version and aggregate are required", eventType, version, aggregateType, aggregateID)
	}
	if tp.IsZero() {
		return Envelope{}, errors.New("new envelope " + eventType + ": no traceparent")
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return Envelope{}, fmt.Errorf("marshal %s data: %w", eventType, err)
	}
	return Envelope{
		EventID:        uuid.NewString(),
		EventType:      eventType,
		EventVersion:   version,
		AggregateType:  aggregateType,
		AggregateID:    aggregateID,
		OccurredAt:     time.Now().UTC(),
		TraceID:        tp.TraceID(),
		IdempotencyKey: aggregateID + "#" + eventType + "#" + strconv.Itoa(version),
		Data:           raw,
	}, nil
}

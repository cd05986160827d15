package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/tracing"
)

// MaxEventBytes is the largest event (the envelope's JSON, which becomes the Kafka value) a
// service may write. Every size limit on the way (Connect's producer, the broker, the topics,
// the consumers' fetches) is 1 MiB, four times as much, so no event we write can stop a
// connector. See docs/architecture.md, "Size limits".
const MaxEventBytes = 256 << 10

// Validator checks an envelope's JSON against the schema of its type and version;
// *schemas.Validator implements it.
type Validator interface {
	Validate(eventType string, version int, raw []byte) error
}

// Outbox writes a service's events to its outbox table. It is the only code in the project that
// writes an outbox.
type Outbox struct {
	schemas Validator
	// Tracer makes each insert a span (Span); the zero value records nothing.
	Tracer tracing.Tracer
}

// NewOutbox returns the outbox writer of a service; every event is checked against schemas
// before it is written.
func NewOutbox(schemas Validator) *Outbox {
	return &Outbox{schemas: schemas}
}

// Emit wraps events of one aggregate at version in envelopes (see messaging.NewEnvelope), in
// trace tp, and writes them with Insert, in order. It returns the envelopes written.
func (o *Outbox) Emit(ctx context.Context, tx *sql.Tx, tp messaging.Traceparent, aggregateType, aggregateID string, version int, events ...messaging.Event) ([]messaging.Envelope, error) {
	out := make([]messaging.Envelope, 0, len(events))
	for _, ev := range events {
		e, err := messaging.NewEnvelope(aggregateType, aggregateID, ev.Type, version, ev.Data, tp)
		if err != nil {
			return nil, fmt.Errorf("emit %s for %s %s: %w", ev.Type, aggregateType, aggregateID, err)
		}
		if err := o.Insert(ctx, tx, e, tp); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// EmitFor writes events caused by the consumed message m, in a child span of m's trace (see
// messaging.Message.NextSpan): what a saga step emits.
func (o *Outbox) EmitFor(ctx context.Context, tx *sql.Tx, m *messaging.Message, aggregateType, aggregateID string, version int, events ...messaging.Event) ([]messaging.Envelope, error) {
	return o.Emit(ctx, tx, m.NextSpan(), aggregateType, aggregateID, version, events...)
}

// Insert writes e to the outbox in the caller's transaction, so the event is emitted if and only
// if the business change commits.
//
// e must match the JSON Schema of its type and version and be at most MaxEventBytes: an event
// that does not is a bug of ours, and Insert fails (the caller's transaction then fails too)
// rather than put on the WAL something that a consumer would dead-letter or that Kafka
// Connect could not deliver. The JSON written is the Kafka value, byte for byte (the
// connectors carry the text column through unchanged).
//
// The row is inserted and deleted again in the same transaction: Debezium reads the INSERT from
// the WAL and the outbox router ignores the DELETE, so the table stays empty (no purge job).
// tp becomes the Kafka header traceparent and must belong to e's trace.
func (o *Outbox) Insert(ctx context.Context, tx *sql.Tx, e messaging.Envelope, tp messaging.Traceparent) (err error) {
	tp, end := o.Span(ctx, e, tp)
	defer func() { end(err) }()
	payload, err := o.Payload(e, tp)
	if err != nil {
		return fmt.Errorf("insert outbox: %w", err)
	}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload, traceparent) VALUES ($1, $2, $3, $4, $5, $6)`,
		e.EventID, e.AggregateType, e.AggregateID, e.EventType, string(payload), tp.String())
	if err != nil {
		return fmt.Errorf("insert outbox %s %s: %w", e.EventType, e.EventID, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE id = $1`, e.EventID); err != nil {
		return fmt.Errorf("delete outbox %s %s: %w", e.EventType, e.EventID, err)
	}
	return nil
}

// Span starts the span of writing e to an outbox (a producer span: the record Debezium makes of
// the row carries its context) and returns the traceparent the row must carry, and the function
// that ends the span. The span is a child of the span in ctx when that is in e's trace (the HTTP
// request, the consumed record), else of tp. With tracing off it returns tp unchanged.
func (o *Outbox) Span(ctx context.Context, e messaging.Envelope, tp messaging.Traceparent) (messaging.Traceparent, func(error)) {
	parent := tp
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && sc.TraceID().String() == tp.TraceID() {
		parent = messaging.Traceparent{}
	}
	ctx, span := o.Tracer.Start(ctx, "outbox insert "+e.EventType, parent, trace.SpanKindProducer,
		attribute.String("event.type", e.EventType), attribute.String("event.id", e.EventID),
		attribute.String("event.aggregate_id", e.AggregateID))
	return tracing.OutboxTraceparent(ctx, tp), func(err error) { tracing.End(span, err) }
}

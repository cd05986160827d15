package messaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Record is a Kafka record as a consumer received it: where it was and what it held.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       string
	Headers   map[string]string
	Value     []byte
}

// Message is what a consumer hands to a handler: the record, the envelope decoded from its value
// (empty for a message that could not be decoded) and its trace context.
type Message struct {
	Envelope
	Record
	Traceparent Traceparent
}

// NextSpan returns the traceparent of what handling m emits: a child span of m's trace, taken
// from its traceparent header, or else from its envelope's traceId (a message handed over without
// headers, a replay), or a new trace when it has neither.
func (m *Message) NextSpan() Traceparent {
	if !m.Traceparent.IsZero() && (m.TraceID == "" || m.Traceparent.TraceID() == m.TraceID) {
		return m.Traceparent.Child()
	}
	if tp, err := NewTraceparentIn(m.TraceID); err == nil {
		return tp
	}
	return NewTraceparent()
}

// DecodeData unmarshals m's data into v. Data that does not decode never will: the error is
// Permanent (poison). That the data's key field matches the aggregate id the Router checked
// before (Router.Key).
func (m *Message) DecodeData(v any) error {
	if err := json.Unmarshal(m.Data, v); err != nil {
		return Permanent(fmt.Errorf("decode the data of %s %s: %w", m.EventType, m.EventID, err))
	}
	return nil
}

// Event is an event a domain decided to emit, before it has an envelope: its type and its data.
// The domains return events as values; the outbox writer (messaging/postgres.Outbox) wraps and
// writes them in the transaction of the change that caused them.
type Event struct {
	Type string
	Data any
}

// Handler processes one message. A nil error means done: the consumer may move past it.
type Handler func(ctx context.Context, m *Message) error

// Middleware wraps a Handler.
type Middleware func(Handler) Handler

// Chain wraps h in mws; the first middleware is the outermost, so
// Chain(h, a, b) runs a, then b, then h.
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// marked is an error marked with what the consumer must do about it.
type marked struct {
	err  error
	kind markKind
}

// markKind names a mark: Permanent or Outage.
type markKind int

const (
	permanent markKind = iota + 1
	outage
)

func (e marked) Error() string { return e.err.Error() }
func (e marked) Unwrap() error { return e.err }

func mark(err error, kind markKind) error {
	if err == nil {
		return nil
	}
	return marked{err: err, kind: kind}
}

// isMarked reports whether err, or an error it wraps, carries the mark kind.
func isMarked(err error, kind markKind) bool {
	for {
		m, ok := errors.AsType[marked](err)
		if !ok {
			return false
		}
		if m.kind == kind {
			return true
		}
		err = m.err
	}
}

// Permanent marks err as not retryable: a poison message (undecodable, schema-invalid, unknown
// type, or a business rule that will fail the same way every time). The kit marks what it finds
// itself; a service's step returns a fault error instead, which the Router marks through
// Classify. Permanent(nil) is nil.
func Permanent(err error) error { return mark(err, permanent) }

// IsPermanent reports whether err, or an error it wraps, was marked with Permanent.
func IsPermanent(err error) bool { return isMarked(err, permanent) }

// Outage marks err as the outage of a dependency (a webhook, a gateway) rather than a fault of the
// message: the consumer retries it until the dependency is back and never dead-letters the
// message for it, as for a database that is down. Outage(nil) is nil.
func Outage(err error) error { return mark(err, outage) }

// IsOutage reports whether err, or an error it wraps, was marked with Outage.
func IsOutage(err error) bool { return isMarked(err, outage) }

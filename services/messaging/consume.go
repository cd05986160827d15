package messaging

import (
	"encoding/json"
	"fmt"

	"outboxsaga.dev/messaging/fault"
)

// Keyed names the field of a service's event data that must equal the event's aggregate id (its
// Kafka key), and the log field that carries the aggregate id. Each service gives its own (the
// saga services: Keyed{Field: "orderId"}) to its Router (Router.Key); the kit names none.
type Keyed struct {
	// Field is the data field checked against the aggregate id; empty checks nothing.
	Field string
	// Log is the name of the aggregate id in the message's log lines; empty: Field, or
	// "aggregateId" when Field is empty too.
	Log string
}

// LogField returns the name under which the message's logger carries its aggregate id.
func (k Keyed) LogField() string {
	switch {
	case k.Log != "":
		return k.Log
	case k.Field != "":
		return k.Field
	}
	return "aggregateId"
}

// Check returns a Permanent error when m's data holds k.Field with another value than m's
// aggregate id: such an event contradicts itself. Data without the field, or a k without one, passes.
func (k Keyed) Check(m *Message) error {
	if k.Field == "" {
		return nil
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(m.Data, &fields) != nil {
		return nil // not an object: the step's own decoding says what is wrong with it
	}
	raw, ok := fields[k.Field]
	if !ok {
		return nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil || v != m.AggregateID {
		return Permanent(fmt.Errorf("%s %s: data.%s %s is not the aggregate id %q", m.EventType, m.EventID, k.Field, raw, m.AggregateID))
	}
	return nil
}

// Classify marks a step's error for the consumer from its fault code, as httpapi.WriteError
// turns the same codes into HTTP statuses: it is the one place that decides whether a consumed
// event is poison. The Router applies it to every handler's error, so steps return plain fault
// errors.
//
//   - Invalid, Conflict, Unprocessable, TooLarge and MediaType are poison (Permanent): the event
//     will fail the same way on every delivery, so it is dead-lettered at once.
//   - NotFound is retried, deliberately: an event about an aggregate the consumer cannot see yet
//     may come before the commit that made it is visible here (Postgres flushes a commit record to
//     the WAL before it makes the transaction visible to other sessions, and a WAL sender may ship
//     it in between: docs/chaos/run-2026-12-01-batches-FAIL.md). Retry tries again with backoff;
//     an event about something that really does not exist is dead-lettered when its attempts are
//     spent.
//   - Unavailable, Internal and any other error are retried as they are; an error marked already
//     (Permanent, Outage) keeps its mark.
func Classify(err error) error {
	if err == nil || IsPermanent(err) || IsOutage(err) {
		return err
	}
	switch fault.Code(err) {
	case fault.Invalid, fault.Conflict, fault.Unprocessable, fault.TooLarge, fault.MediaType:
		return Permanent(err)
	}
	return err
}

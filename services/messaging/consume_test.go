package messaging_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
)

// TestClassify: the fault codes that will fail the same way again are poison; not-found (the
// commit-visibility race), unavailable and anything else are retried; a mark is kept.
func TestClassify(t *testing.T) {
	tests := []struct {
		name                  string
		err                   error
		wantPermanent, wantOK bool
	}{
		{name: "nil", err: nil, wantOK: true},
		{name: "invalid", err: fault.Errorf(fault.Invalid, "bad"), wantPermanent: true},
		{name: "wrapped conflict", err: fmt.Errorf("step: %w", fault.Reasoned(fault.Conflict, "already_delivered", "no")), wantPermanent: true},
		{name: "unprocessable", err: fault.Errorf(fault.Unprocessable, "no"), wantPermanent: true},
		{name: "not found is retried", err: fault.Errorf(fault.NotFound, "not yet visible")},
		{name: "unavailable is retried", err: fault.Errorf(fault.Unavailable, "down")},
		{name: "internal is retried", err: fault.Errorf(fault.Internal, "broken")},
		{name: "plain error is retried", err: errors.New("boom")},
		{name: "outage keeps its mark", err: messaging.Outage(fault.Errorf(fault.Invalid, "401"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := messaging.Classify(tt.err)
			if (got == nil) != tt.wantOK || messaging.IsPermanent(got) != tt.wantPermanent || !errors.Is(got, tt.err) {
				t.Fatalf("Classify(%v) = %v, permanent %v; want permanent %v", tt.err, got, messaging.IsPermanent(got), tt.wantPermanent)
			}
			if messaging.IsOutage(tt.err) != messaging.IsOutage(got) {
				t.Fatalf("Classify(%v) lost or added the outage mark", tt.err)
			}
		})
	}
}

// TestRouterClassifiesAndChecksTheKey: the Router classifies its handlers' errors, and refuses as
// poison, before the handler, an event whose key field is not its aggregate id.
func TestRouterClassifiesAndChecksTheKey(t *testing.T) {
	var ran int
	r := messaging.NewRouter()
	r.Key(messaging.Keyed{Field: "orderId"})
	r.Handle("OrderCreated", 1, func(context.Context, *messaging.Message) error {
		ran++
		return fault.Errorf(fault.Invalid, "no items")
	})
	r.Ignore("OrderCompleted", 1)
	msg := func(eventType, data string) *messaging.Message {
		return &messaging.Message{Envelope: messaging.Envelope{EventID: "e1", EventType: eventType, EventVersion: 1, AggregateID: "o1", Data: []byte(data)}}
	}
	tests := []struct {
		name, eventType, data string
		wantRan               int
		wantPermanent         bool
	}{
		{name: "matching key, handler's invalid is poison", eventType: "OrderCreated", data: `{"orderId":"o1"}`, wantRan: 1, wantPermanent: true},
		{name: "no key field", eventType: "OrderCreated", data: `{"sku":"A"}`, wantRan: 1, wantPermanent: true},
		{name: "other key is poison before the handler", eventType: "OrderCreated", data: `{"orderId":"o2"}`, wantPermanent: true},
		{name: "other key on an ignored event", eventType: "OrderCompleted", data: `{"orderId":"o2"}`, wantPermanent: true},
		{name: "non-string key", eventType: "OrderCompleted", data: `{"orderId":42}`, wantPermanent: true},
		{name: "ignored", eventType: "OrderCompleted", data: `{"orderId":"o1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran = 0
			err := r.Dispatch(context.Background(), msg(tt.eventType, tt.data))
			if messaging.IsPermanent(err) != tt.wantPermanent || (!tt.wantPermanent && err != nil) || ran != tt.wantRan {
				t.Fatalf("Dispatch() = %v (ran %d); want permanent %v, ran %d", err, ran, tt.wantPermanent, tt.wantRan)
			}
		})
	}
	if got := r.Keyed().LogField(); got != "orderId" {
		t.Fatalf("LogField() = %q, want orderId", got)
	}
	if got := (messaging.Keyed{}).LogField(); got != "aggregateId" {
		t.Fatalf("LogField() of no key = %q, want aggregateId", got)
	}
}

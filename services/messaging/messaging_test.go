package messaging_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"outboxsaga.dev/messaging"
)

func TestParseTraceparent(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{name: "valid", in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", want: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{name: "not sampled", in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", want: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},
		{name: "future version with extra field", in: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz", want: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{name: "version 00 with extra field", in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz", wantErr: true},
		{name: "version ff", in: "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", wantErr: true},
		{name: "upper case", in: "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", wantErr: true},
		{name: "zero trace id", in: "00-00000000000000000000000000000000-00f067aa0ba902b7-01", wantErr: true},
		{name: "zero span id", in: "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", wantErr: true},
		{name: "bad separator", in: "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", wantErr: true},
		{name: "short", in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := messaging.ParseTraceparent(tt.in)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("ParseTraceparent() error = %v, wantErr %v", err, tt.wantErr)
			}
			if got.String() != tt.want {
				t.Fatalf("String() = %q, want %q", got.String(), tt.want)
			}
		})
	}
}

func TestTraceparentChild(t *testing.T) {
	parent := messaging.NewTraceparent()
	child := parent.Child()
	if child.TraceID() != parent.TraceID() {
		t.Fatalf("child trace id %s, want %s", child.TraceID(), parent.TraceID())
	}
	if child.SpanID() == parent.SpanID() {
		t.Fatalf("child span id = parent span id %s", child.SpanID())
	}
	back, err := messaging.ParseTraceparent(child.String())
	if err != nil || back != child {
		t.Fatalf("ParseTraceparent(%q) = %v, %v; want the child back", child.String(), back, err)
	}
	if !regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`).MatchString(parent.String()) {
		t.Fatalf("NewTraceparent().String() = %q", parent.String())
	}
}

func TestNewTraceparentIn(t *testing.T) {
	tests := []struct {
		name    string
		traceID string
		wantErr bool
	}{
		{name: "valid", traceID: "4bf92f3577b34da6a3ce929d0e0e4736"},
		{name: "upper case", traceID: "4BF92F3577B34DA6A3CE929D0E0E4736", wantErr: true},
		{name: "zero", traceID: "00000000000000000000000000000000", wantErr: true},
		{name: "empty", traceID: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, err := messaging.NewTraceparentIn(tt.traceID)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("NewTraceparentIn() error = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && tp.TraceID() != tt.traceID {
				t.Fatalf("TraceID() = %s, want %s", tp.TraceID(), tt.traceID)
			}
		})
	}
}

func TestZeroTraceparent(t *testing.T) {
	var tp messaging.Traceparent
	if !tp.IsZero() || tp.String() != "" || tp.TraceID() != "" {
		t.Fatalf("zero Traceparent: IsZero %v, String %q, TraceID %q", tp.IsZero(), tp.String(), tp.TraceID())
	}
}

func TestNewEnvelope(t *testing.T) {
	tp := messaging.NewTraceparent()
	data := map[string]any{"orderId": "o1", "reason": "CARD_DECLINED"}
	e, err := messaging.NewEnvelope("payment", "o1", "PaymentFailed", 1, data, tp)
	if err != nil {
		t.Fatalf("NewEnvelope: %v", err)
	}
	if e.IdempotencyKey != "o1#PaymentFailed#1" || e.TraceID != tp.TraceID() || e.AggregateType != "payment" ||
		e.AggregateID != "o1" || e.EventType != "PaymentFailed" || e.EventVersion != 1 {
		t.Fatalf("envelope = %+v", e)
	}
	if e.OccurredAt.Location() != time.UTC || time.Since(e.OccurredAt) > time.Minute {
		t.Fatalf("OccurredAt = %v, want now in UTC", e.OccurredAt)
	}
	raw, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	for _, name := range []string{"eventId", "eventType", "eventVersion", "aggregateType", "aggregateId", "occurredAt", "traceId", "idempotencyKey", "data"} {
		if _, ok := fields[name]; !ok {
			t.Errorf("JSON has no %q: %s", name, raw)
		}
	}
	if len(fields) != 9 {
		t.Errorf("JSON has %d fields, want 9: %s", len(fields), raw)
	}
	if !regexp.MustCompile(`"occurredAt":"[^"]+Z"`).Match(raw) {
		t.Errorf("occurredAt not in UTC: %s", raw)
	}

	other, err := messaging.NewEnvelope("payment", "o1", "PaymentFailed", 1, data, tp)
	if err != nil {
		t.Fatalf("NewEnvelope: %v", err)
	}
	if other.EventID == e.EventID {
		t.Fatalf("two envelopes share event id %s", e.EventID)
	}
}

func TestNewEnvelopeErrors(t *testing.T) {
	tp := messaging.NewTraceparent()
	tests := []struct {
		name          string
		aggregateType string
		aggregateID   string
		eventType     string
		version       int
		data          any
		tp            messaging.Traceparent
	}{
		{name: "no traceparent", aggregateType: "order", aggregateID: "o1", eventType: "OrderCreated", version: 1},
		{name: "no aggregate id", aggregateType: "order", eventType: "OrderCreated", version: 1, tp: tp},
		{name: "version 0", aggregateType: "order", aggregateID: "o1", eventType: "OrderCreated", tp: tp},
		{name: "unmarshalable data", aggregateType: "order", aggregateID: "o1", eventType: "OrderCreated", version: 1, data: make(chan int), tp: tp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := messaging.NewEnvelope(tt.aggregateType, tt.aggregateID, tt.eventType, tt.version, tt.data, tt.tp); err == nil {
				t.Fatal("NewEnvelope() error = nil, want error")
			}
		})
	}
}

func TestChainOrder(t *testing.T) {
	var calls []string
	mw := func(name string) messaging.Middleware {
		return func(next messaging.Handler) messaging.Handler {
			return func(ctx context.Context, m *messaging.Message) error {
				calls = append(calls, name)
				return next(ctx, m)
			}
		}
	}
	h := messaging.Chain(func(context.Context, *messaging.Message) error {
		calls = append(calls, "handler")
		return nil
	}, mw("a"), mw("b"))
	if err := h(context.Background(), &messaging.Message{}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(calls) != "[a b handler]" {
		t.Fatalf("calls = %v, want [a b handler]", calls)
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("bad")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil},
		{name: "plain", err: base},
		{name: "permanent", err: messaging.Permanent(base), want: true},
		{name: "wrapped permanent", err: fmt.Errorf("handle: %w", messaging.Permanent(base)), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := messaging.IsPermanent(tt.err); got != tt.want {
				t.Fatalf("IsPermanent() = %v, want %v", got, tt.want)
			}
		})
	}
	if messaging.Permanent(nil) != nil {
		t.Fatal("Permanent(nil) != nil")
	}
	if !errors.Is(messaging.Permanent(base), base) {
		t.Fatal("Permanent(err) does not wrap err")
	}
}

func TestRouter(t *testing.T) {
	var handled []string
	r := messaging.NewRouter()
	r.Handle("OrderCreated", 1, func(_ context.Context, m *messaging.Message) error {
		handled = append(handled, m.EventID)
		return nil
	})
	r.Ignore("OrderCompleted", 1)

	tests := []struct {
		name          string
		eventType     string
		version       int
		wantHandled   bool
		wantPermanent bool
	}{
		{name: "handled", eventType: "OrderCreated", version: 1, wantHandled: true},
		{name: "ignored", eventType: "OrderCompleted", version: 1},
		{name: "unknown version", eventType: "OrderCreated", version: 2, wantPermanent: true},
		{name: "unknown type", eventType: "OrderShipped", version: 1, wantPermanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handled = nil
			m := &messaging.Message{Envelope: messaging.Envelope{EventID: "e1", EventType: tt.eventType, EventVersion: tt.version}}
			err := r.Dispatch(context.Background(), m)
			if got := messaging.IsPermanent(err) && errors.Is(err, messaging.ErrNoRoute); got != tt.wantPermanent {
				t.Fatalf("Dispatch() error = %v, want permanent ErrNoRoute: %v", err, tt.wantPermanent)
			}
			if !tt.wantPermanent && err != nil {
				t.Fatalf("Dispatch() error = %v", err)
			}
			if got := len(handled) == 1; got != tt.wantHandled {
				t.Fatalf("handled = %v, want handled: %v", handled, tt.wantHandled)
			}
		})
	}
}

// TestRouterInABatch: inside a batch a handler registered with Handle is refused before it runs
// (ErrNotBatchable, not poison); HandleBatchable and Ignore run as outside one.
func TestRouterInABatch(t *testing.T) {
	var ran []string
	handler := func(name string) messaging.Handler {
		return func(ctx context.Context, _ *messaging.Message) error {
			ran = append(ran, fmt.Sprintf("%s in batch %v", name, messaging.InBatch(ctx)))
			return nil
		}
	}
	r := messaging.NewRouter()
	r.Handle("OrderCreated", 1, handler("alone"))
	r.HandleBatchable("OrderCompleted", 1, handler("batchable"))
	r.Ignore("OrderCanceled", 1)
	inBatch, _ := messaging.WithBatch(context.Background())
	tests := []struct {
		name      string
		ctx       context.Context
		eventType string
		wantRan   []string
		wantErr   error
	}{
		{name: "alone outside a batch", ctx: context.Background(), eventType: "OrderCreated", wantRan: []string{"alone in batch false"}},
		{name: "alone in a batch", ctx: inBatch, eventType: "OrderCreated", wantErr: messaging.ErrNotBatchable},
		{name: "batchable outside a batch", ctx: context.Background(), eventType: "OrderCompleted", wantRan: []string{"batchable in batch false"}},
		{name: "batchable in a batch", ctx: inBatch, eventType: "OrderCompleted", wantRan: []string{"batchable in batch true"}},
		{name: "ignored in a batch", ctx: inBatch, eventType: "OrderCanceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran = nil
			err := r.Dispatch(tt.ctx, &messaging.Message{Envelope: messaging.Envelope{EventID: "e1", EventType: tt.eventType, EventVersion: 1}})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) || messaging.IsPermanent(err) {
				t.Fatalf("Dispatch() error = %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(ran, tt.wantRan) {
				t.Fatalf("ran %q, want %q", ran, tt.wantRan)
			}
		})
	}
}

// TestAfterCommit: outside a batch at once; inside one at Committed, in order, once.
func TestAfterCommit(t *testing.T) {
	var got []string
	messaging.AfterCommit(context.Background(), func() { got = append(got, "now") })
	ctx, b := messaging.WithBatch(context.Background())
	messaging.AfterCommit(ctx, func() { got = append(got, "first") })
	messaging.AfterCommit(ctx, func() { got = append(got, "second") })
	if !slices.Equal(got, []string{"now"}) {
		t.Fatalf("before the commit ran %q, want only now", got)
	}
	b.Committed()
	b.Committed()
	if want := []string{"now", "first", "second"}; !slices.Equal(got, want) {
		t.Fatalf("ran %q, want %q", got, want)
	}
}

func TestRouterDuplicatePanics(t *testing.T) {
	r := messaging.NewRouter()
	r.Ignore("OrderCreated", 1)
	defer func() {
		if recover() == nil {
			t.Fatal("second Handle of the same route did not panic")
		}
	}()
	r.Ignore("OrderCreated", 1)
}

func TestRedact(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"envelope", `{"data":{"orderId":"o","paymentToken":"tok_ok","amount":1}}`, `{"data":{"orderId":"o","paymentToken":"[redacted]","amount":1}}`},
		{"escaped quotes", `{"paymentToken" : "a\"b\\","x":1}`, `{"paymentToken" : "[redacted]","x":1}`},
		{"cut off", `{"data":{"paymentToken":"tok_secr`, `{"data":{"paymentToken":"[redacted]"`},
		{"no token", `{"customerId":"U1"}`, `{"customerId":"U1"}`},
		{"validator error", "jsonschema validation failed\n- at '/data/paymentToken': 'tok\x01x' does not match pattern", "jsonschema validation failed\n- at '/data/paymentToken': '[redacted]'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(messaging.Redact([]byte(tt.in))); got != tt.want {
				t.Fatalf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestOutage(t *testing.T) {
	down := errors.New("webhook: connection refused")
	if !messaging.IsOutage(fmt.Errorf("notify: %w", messaging.Outage(down))) || messaging.IsOutage(down) || messaging.Outage(nil) != nil {
		t.Fatal("Outage does not mark, or marks what it should not")
	}
	if messaging.IsPermanent(messaging.Outage(down)) {
		t.Fatal("an outage is permanent")
	}
}

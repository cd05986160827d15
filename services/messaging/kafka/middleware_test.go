package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/kafka"
	"outboxsaga.dev/schemas"
)

// memStore is an in-memory kafka.DeadLetterStore that can fail its first stores.
type memStore struct {
	mu       sync.Mutex
	failures int // Store calls still to fail
	stored   []stored
}

type stored struct {
	service  string
	offset   int64
	value    string
	cause    error
	attempts int
}

func (s *memStore) Store(_ context.Context, service string, m *messaging.Message, cause error, attempts int) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures > 0 {
		s.failures--
		return 0, errors.New("database down")
	}
	s.stored = append(s.stored, stored{service, m.Offset, string(m.Value), cause, attempts})
	return int64(len(s.stored)), nil
}

func (s *memStore) all() []stored {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]stored(nil), s.stored...)
}

// failing returns a handler that fails n times with err, then succeeds, and counts its calls.
func failing(n int, err error, calls *int) messaging.Handler {
	return func(context.Context, *messaging.Message) error {
		*calls++
		if *calls <= n {
			return err
		}
		return nil
	}
}

// errDown stands for a dependency's outage; isDown classifies it (as postgres.IsUnavailable does
// for the database).
var errDown = errors.New("database down")

func isDown(err error) bool { return errors.Is(err, errDown) }

func TestRetry(t *testing.T) {
	transient := errors.New("transient")
	tests := []struct {
		name      string
		failures  int
		err       error
		wantCalls int
		wantErr   bool
	}{
		{name: "success", failures: 0, err: transient, wantCalls: 1},
		{name: "fails twice then succeeds", failures: 2, err: transient, wantCalls: 3},
		{name: "exhausted", failures: 10, err: transient, wantCalls: 4, wantErr: true},
		{name: "permanent is not retried", failures: 10, err: messaging.Permanent(transient), wantCalls: 1, wantErr: true},
		{name: "an outage outlasting maxAttempts is waited out", failures: 12, err: fmt.Errorf("commit: %w", errDown), wantCalls: 13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls int
			h := messaging.Chain(failing(tt.failures, tt.err, &calls), kafka.Retry(4, time.Millisecond, 4*time.Millisecond, isDown))
			err := h(context.Background(), &messaging.Message{})
			if (err != nil) != tt.wantErr || calls != tt.wantCalls {
				t.Fatalf("err = %v, calls = %d; want error %v, calls %d", err, calls, tt.wantErr, tt.wantCalls)
			}
		})
	}
}

func TestRetryStopsWhenContextDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls int
	h := messaging.Chain(func(context.Context, *messaging.Message) error {
		calls++
		cancel()
		return errors.New("transient")
	}, kafka.Retry(10, time.Hour, time.Hour, nil))
	done := make(chan error)
	go func() { done <- h(ctx, &messaging.Message{}) }()
	select {
	case err := <-done:
		if err == nil || calls != 1 {
			t.Fatalf("err = %v, calls = %d; want the error after 1 call", err, calls)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Retry kept waiting after the context was canceled")
	}
}

func TestRecover(t *testing.T) {
	h := messaging.Chain(func(context.Context, *messaging.Message) error { panic("boom") }, kafka.Recover())
	err := h(context.Background(), &messaging.Message{})
	if err == nil || !strings.Contains(err.Error(), "boom") || messaging.IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable error mentioning the panic", err)
	}
}

func TestDeadLetter(t *testing.T) {
	transient := errors.New("transient")
	tests := []struct {
		name          string
		failures      int
		err           error
		storeFailures int
		wantStored    bool
		wantAttempts  int
	}{
		{name: "success is not stored", failures: 0, err: transient},
		{name: "permanent stored at once", failures: 10, err: messaging.Permanent(transient), wantStored: true, wantAttempts: 1},
		{name: "exhausted retries stored", failures: 10, err: transient, wantStored: true, wantAttempts: 3},
		{name: "store failing twice is retried", failures: 10, err: messaging.Permanent(transient), storeFailures: 2, wantStored: true, wantAttempts: 1},
		{name: "an outage is never dead-lettered", failures: 10, err: errDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &memStore{failures: tt.storeFailures}
			var calls int
			h := messaging.Chain(failing(tt.failures, tt.err, &calls),
				kafka.DeadLetter(store, "svc"), kafka.Retry(3, time.Millisecond, time.Millisecond, isDown))
			if err := h(context.Background(), &messaging.Message{Record: messaging.Record{Offset: 5}}); err != nil {
				t.Fatalf("handler = %v, want nil (dead-lettered or handled)", err)
			}
			got := store.all()
			if (len(got) == 1) != tt.wantStored {
				t.Fatalf("stored %v, want stored: %v", got, tt.wantStored)
			}
			if tt.wantStored && (got[0].attempts != tt.wantAttempts || got[0].service != "svc" || !errors.Is(got[0].cause, transient)) {
				t.Fatalf("stored %+v, want attempts %d", got[0], tt.wantAttempts)
			}
		})
	}
}

func TestDeadLetterNeverDrops(t *testing.T) {
	store := &memStore{failures: 1 << 30}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	h := messaging.Chain(func(context.Context, *messaging.Message) error {
		return messaging.Permanent(errors.New("poison"))
	}, kafka.DeadLetter(store, "svc"))
	if err := h(ctx, &messaging.Message{}); err == nil {
		t.Fatal("handler = nil although the dead letter was never stored")
	}
}

// envelopeJSON returns the JSON of a new envelope of eventType about testOrderID.
func envelopeJSON(t *testing.T, eventType string, data any) []byte {
	t.Helper()
	raw, _ := envelopeWithID(t, eventType, data)
	return raw
}

// envelopeWithID is envelopeJSON and the envelope's event id.
func envelopeWithID(t *testing.T, eventType string, data any) ([]byte, string) {
	t.Helper()
	e, err := messaging.NewEnvelope("order", testOrderID, eventType, 1, data, messaging.NewTraceparent())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return raw, e.EventID
}

func orderCompleted() map[string]any {
	return map[string]any{"orderId": testOrderID, "amount": 1000, "currency": "KRW",
		"items": []any{map[string]any{"sku": "A", "qty": 1, "unitPrice": 1000}}}
}

func TestDecode(t *testing.T) {
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	valid := envelopeJSON(t, "OrderCompleted", orderCompleted())
	headerTP := messaging.NewTraceparent()
	tests := []struct {
		name          string
		value         []byte
		header        messaging.Traceparent
		wantPermanent bool
	}{
		{name: "valid", value: valid},
		{name: "valid with traceparent header of another trace", value: valid, header: headerTP},
		{name: "not JSON", value: []byte("not json"), wantPermanent: true},
		{name: "JSON string", value: []byte(`"{\"eventId\":\"x\"}"`), wantPermanent: true},
		{name: "unknown type", value: envelopeJSON(t, "OrderShipped", orderCompleted()), wantPermanent: true},
		{name: "schema-invalid", value: envelopeJSON(t, "OrderCompleted", map[string]any{"orderId": testOrderID}), wantPermanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *messaging.Message
			h := messaging.Chain(func(_ context.Context, m *messaging.Message) error { got = m; return nil }, kafka.Decode(v))
			err := h(context.Background(), &messaging.Message{Traceparent: tt.header, Record: messaging.Record{Value: tt.value}})
			if messaging.IsPermanent(err) != tt.wantPermanent || (!tt.wantPermanent && err != nil) {
				t.Fatalf("Decode = %v, want permanent: %v", err, tt.wantPermanent)
			}
			if tt.wantPermanent {
				if got != nil {
					t.Fatal("handler ran for poison")
				}
				return
			}
			if got.EventType != "OrderCompleted" || got.AggregateID != testOrderID || got.Traceparent.TraceID() != got.TraceID {
				t.Fatalf("decoded %+v", got)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	_ = kafka.Metrics(reg) // a second registration below reuses the collectors
	store := &memStore{}
	var calls int
	h := messaging.Chain(failing(1, errors.New("transient"), &calls),
		kafka.Metrics(reg),
		kafka.DeadLetter(store, "svc"), kafka.Retry(3, time.Millisecond, time.Millisecond, nil), kafka.Decode(v))
	ctx := context.Background()
	if err := h(ctx, &messaging.Message{Record: messaging.Record{Value: envelopeJSON(t, "OrderCompleted", orderCompleted())}}); err != nil {
		t.Fatal(err)
	}
	if err := h(ctx, &messaging.Message{Record: messaging.Record{Value: []byte("poison")}}); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP messaging_dead_letters_total Messages stored as dead letters, by event type.
# TYPE messaging_dead_letters_total counter
messaging_dead_letters_total{event_type="unknown"} 1
# HELP messaging_events_handled_total Messages handled, by event type and outcome (ok, dead_lettered, error).
# TYPE messaging_events_handled_total counter
messaging_events_handled_total{event_type="OrderCompleted",outcome="ok"} 1
messaging_events_handled_total{event_type="unknown",outcome="dead_lettered"} 1
# HELP messaging_retries_total Handler retries, by event type.
# TYPE messaging_retries_total counter
messaging_retries_total{event_type="OrderCompleted"} 1
`
	err = testutil.GatherAndCompare(reg, strings.NewReader(want),
		"messaging_dead_letters_total", "messaging_events_handled_total", "messaging_retries_total")
	if err != nil {
		t.Fatal(err)
	}
}

// testOrderID is the order the test events are about.
const testOrderID = "0b9c6a1e-2f3d-4e5a-8b7c-9d0e1f2a3b4c"

func TestOnItsTopic(t *testing.T) {
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	h := messaging.Chain(func(context.Context, *messaging.Message) error { return nil }, kafka.Decode(v), kafka.OnItsTopic())
	tests := []struct {
		topic   string
		wantErr bool
	}{
		{topic: "order-events"},
		{topic: "payment-events", wantErr: true},
		{topic: "order-events-copy", wantErr: true},
		{topic: messaging.TopicQuarantine, wantErr: true},
	}
	for _, tt := range tests {
		m := &messaging.Message{Record: messaging.Record{Topic: tt.topic, Value: envelopeJSON(t, "OrderCompleted", orderCompleted()),
			Headers: map[string]string{"quarantinedBy": "shipping-outbox"}}}
		err := h(context.Background(), m)
		if tt.wantErr != (err != nil) || err != nil && !messaging.IsPermanent(err) {
			t.Errorf("OrderCompleted on %s: %v, want poison %v", tt.topic, err, tt.wantErr)
		}
		if tt.topic == messaging.TopicQuarantine && (err == nil || !strings.Contains(err.Error(), "quarantined by the connector shipping-outbox")) {
			t.Errorf("a quarantined event's error %v does not name the connector that quarantined it", err)
		}
	}
}

// TestMiddlewareInABatch: inside a batch an error goes straight out (no retry, no dead letter:
// the batch rolls back and its messages are handled again one by one), and a message is counted
// only once the batch committed.
func TestMiddlewareInABatch(t *testing.T) {
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		err         error
		commit      bool
		wantCalls   int
		wantHandled float64
		wantRolled  float64
	}{
		{name: "success, committed", commit: true, wantCalls: 1, wantHandled: 1},
		{name: "success, rolled back by another message", wantCalls: 1},
		{name: "transient error", err: errors.New("transient"), wantCalls: 1, wantRolled: 1},
		{name: "poison", err: messaging.Permanent(errors.New("poison")), wantCalls: 1, wantRolled: 1},
		{name: "refused", err: messaging.ErrNotBatchable, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, store := prometheus.NewRegistry(), &memStore{}
			var calls int
			h := messaging.Chain(failing(10, tt.err, &calls), // tt.err nil: succeeds
				kafka.Metrics(reg), kafka.DeadLetter(store, "svc"), kafka.Retry(3, time.Millisecond, time.Millisecond, nil), kafka.Decode(v))
			ctx, b := messaging.WithBatch(context.Background())
			err := h(ctx, &messaging.Message{Record: messaging.Record{Value: envelopeJSON(t, "OrderCompleted", orderCompleted())}})
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("handler = %v, want %v passed through", err, tt.err)
			}
			if tt.commit {
				b.Committed()
			}
			if calls != tt.wantCalls || len(store.all()) != 0 {
				t.Fatalf("%d calls, %d dead letters; want %d calls, none", calls, len(store.all()), tt.wantCalls)
			}
			if got := total(t, reg, "messaging_events_handled_total"); got != tt.wantHandled {
				t.Errorf("counted %v handled, want %v", got, tt.wantHandled)
			}
			if got := total(t, reg, "messaging_batch_rollbacks_total"); got != tt.wantRolled {
				t.Errorf("counted %v rollbacks, want %v", got, tt.wantRolled)
			}
		})
	}
}

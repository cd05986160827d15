package kafka_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/kafka"
	"outboxsaga.dev/messaging/tracing"
)

// TestTraceSpanPerRecord: a consumed record is a consumer span, the child of the span named by
// its traceparent header, named after its event type.
func TestTraceSpanPerRecord(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := tracing.NewProvider("test", sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	producer := messaging.NewTraceparent()
	m := &messaging.Message{Record: messaging.Record{Topic: "order-events"}, Traceparent: producer}
	h := kafka.Trace(tracing.New(tp, "test"))(func(ctx context.Context, m *messaging.Message) error {
		m.EventType = "OrderCreated" // what Decode sets, further in
		return nil
	})
	if err := h(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Name() != "consume OrderCreated" || s.Parent().SpanID().String() != producer.SpanID() ||
		s.SpanContext().TraceID().String() != producer.TraceID() {
		t.Fatalf("span %q parent %s trace %s; want consume OrderCreated below %s", s.Name(), s.Parent().SpanID(), s.SpanContext().TraceID(), producer)
	}
}

package kafka

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/tracing"
)

// Trace makes each consumed record a consumer span, the child of the span that wrote it (the
// record's traceparent header: the outbox insert span of the producing service), named after
// its event type once Decode has read it. What the handler writes to its outbox hangs below.
// Put it outside Retry: one span per record, its attempts inside.
func Trace(t tracing.Tracer) messaging.Middleware {
	return func(next messaging.Handler) messaging.Handler {
		return func(ctx context.Context, m *messaging.Message) error {
			ctx, span := t.Start(ctx, "consume "+m.Topic, m.Traceparent, trace.SpanKindConsumer,
				attribute.String("messaging.system", "kafka"),
				attribute.String("messaging.destination.name", m.Topic),
				attribute.Int("messaging.destination.partition.id", int(m.Partition)),
				attribute.Int64("messaging.kafka.offset", m.Offset),
				attribute.String("messaging.kafka.message.key", m.Key))
			err := next(ctx, m)
			if m.EventType != "" {
				span.SetName("consume " + m.EventType)
				span.SetAttributes(attribute.String("event.type", m.EventType), attribute.String("event.id", m.EventID))
			}
			tracing.End(span, err)
			return err
		}
	}
}

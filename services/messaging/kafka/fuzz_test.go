package kafka_test

import (
	"context"
	"testing"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/kafka"
	"outboxsaga.dev/schemas"
)

// FuzzDecode: any record value either reaches the handler as a schema-valid envelope with a
// traceparent, or is a Permanent error (poison, dead-lettered): never a panic, never a transient
// error that would be retried forever.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"eventId":"0b9c6e1e-4a5c-4f55-9a57-0c1f7c9b1a11","eventType":"PaymentFailed","eventVersion":1,"aggregateType":"payment","aggregateId":"0b9c6e1e-4a5c-4f55-9a57-0c1f7c9b1a12","occurredAt":"2026-01-01T00:00:00Z","traceId":"0af7651916cd43dd8448eb211c80319c","idempotencyKey":"0b9c6e1e-4a5c-4f55-9a57-0c1f7c9b1a12#PaymentFailed#1","data":{"orderId":"0b9c6e1e-4a5c-4f55-9a57-0c1f7c9b1a12","reason":"CARD_DECLINED","amount":39000,"currency":"KRW"}}`,
		`{"eventType":"OrderCreated","eventVersion":1,"data":{"orderId":42}}`,
		`{"eventType":"OrderTeleported","eventVersion":9}`,
		`this is not JSON`,
		`"a string"`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	v, err := schemas.New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		reached := false
		h := kafka.Decode(v)(func(_ context.Context, m *messaging.Message) error {
			reached = true
			if m.Traceparent.IsZero() {
				t.Fatalf("value %q reached the handler without a traceparent", value)
			}
			return nil
		})
		err := h(context.Background(), &messaging.Message{Record: messaging.Record{Value: value}})
		if err != nil && !messaging.IsPermanent(err) {
			t.Fatalf("value %q: error %v is not Permanent", value, err)
		}
		if err == nil && !reached {
			t.Fatalf("value %q: no error, but the handler was not called", value)
		}
	})
}

package schemas_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"outboxsaga.dev/schemas"
)

// validData holds a valid data object and the aggregate type of every event type.
func validData() map[string]struct {
	aggregateType string
	data          map[string]any
} {
	type d = map[string]any
	const (
		orderID    = "0b9c6a1e-2f3d-4e5a-8b7c-9d0e1f2a3b4c"
		deliveryID = "5d2e7f90-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
	)
	items := []any{d{"sku": "A100", "qty": 2, "unitPrice": 15000}}
	return map[string]struct {
		aggregateType string
		data          map[string]any
	}{
		"OrderCreated":           {"order", d{"orderId": orderID, "customerId": "U1", "items": items, "amount": 30000, "currency": "KRW", "paymentToken": "tok_ok"}},
		"OrderCompleted":         {"order", d{"orderId": orderID, "items": items, "amount": 30000, "currency": "KRW"}},
		"OrderCanceled":          {"order", d{"orderId": orderID, "reason": "TIMEOUT", "items": items}},
		"StockReserved":          {"inventory", d{"orderId": orderID, "items": items, "amount": 30000, "currency": "KRW", "paymentToken": "tok_ok"}},
		"StockReservationFailed": {"inventory", d{"orderId": orderID, "reason": "OUT_OF_STOCK", "skus": []any{"A100"}}},
		"StockReleased":          {"inventory", d{"orderId": orderID, "items": items}},
		"StockCommitted":         {"inventory", d{"orderId": orderID, "items": items}},
		"StockDepleted":          {"inventory", d{"sku": "A100"}},
		"StockReplenished":       {"inventory", d{"sku": "A100", "available": 5}},
		"PaymentAuthorized":      {"payment", d{"orderId": orderID, "amount": 30000, "currency": "KRW", "pgTxnId": "pg_1"}},
		"PaymentFailed":          {"payment", d{"orderId": orderID, "reason": "CARD_DECLINED", "amount": 30000, "currency": "KRW"}},
		"PaymentVoided":          {"payment", d{"orderId": orderID, "amount": 30000, "currency": "USD", "pgTxnId": "pg_1"}},
		"DeliveryScheduled":      {"shipping", d{"orderId": orderID, "deliveryId": deliveryID, "items": items}},
		"DeliveryShipped":        {"shipping", d{"orderId": orderID, "deliveryId": deliveryID}},
		"DeliveryDelivered":      {"shipping", d{"orderId": orderID, "deliveryId": deliveryID}},
		"DeadLettered": {"dead-letter", d{"service": "inventory", "topic": "order-events", "partition": 0, "offset": 42,
			"key": orderID, "keyBytes": 36, "eventId": "", "eventType": "", "error": "decode: invalid character", "attempts": 1,
			"valueExcerpt": "not json", "valueBytes": 8}},
	}
}

// envelope returns a valid envelope of eventType as a map the test can break.
func envelope(eventType, aggregateType string, data map[string]any) map[string]any {
	return map[string]any{
		"eventId":        "6f1c2a4e-8a7b-4c1d-9e2f-3a4b5c6d7e8f",
		"eventType":      eventType,
		"eventVersion":   1,
		"aggregateType":  aggregateType,
		"aggregateId":    "0b9c6a1e-2f3d-4e5a-8b7c-9d0e1f2a3b4c",
		"occurredAt":     "2025-01-02T03:04:05.123456Z",
		"traceId":        "4bf92f3577b34da6a3ce929d0e0e4736",
		"idempotencyKey": "0b9c6a1e-2f3d-4e5a-8b7c-9d0e1f2a3b4c#" + eventType + "#1",
		"data":           data,
	}
}

func TestValidateEveryType(t *testing.T) {
	v, err := schemas.New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// Each mutation breaks one rule of the envelope or of data; nil data mutation = the valid case.
	tests := []struct {
		name    string
		mutate  func(e, data map[string]any)
		wantErr bool
	}{
		{name: "valid", mutate: func(e, data map[string]any) {}},
		{name: "missing eventId", mutate: func(e, data map[string]any) { delete(e, "eventId") }, wantErr: true},
		{name: "eventId not a uuid", mutate: func(e, data map[string]any) { e["eventId"] = "42" }, wantErr: true},
		{name: "eventVersion 2", mutate: func(e, data map[string]any) { e["eventVersion"] = 2 }, wantErr: true},
		{name: "wrong aggregateType", mutate: func(e, data map[string]any) { e["aggregateType"] = "nobody" }, wantErr: true},
		{name: "empty aggregateId", mutate: func(e, data map[string]any) { e["aggregateId"] = "" }, wantErr: true},
		{name: "aggregateId over 128", mutate: func(e, data map[string]any) { e["aggregateId"] = strings.Repeat("a", 129) }, wantErr: true},
		{name: "occurredAt not a date-time", mutate: func(e, data map[string]any) { e["occurredAt"] = "yesterday" }, wantErr: true},
		{name: "occurredAt not UTC", mutate: func(e, data map[string]any) { e["occurredAt"] = "2025-01-02T12:04:05+09:00" }, wantErr: true},
		{name: "traceId upper case", mutate: func(e, data map[string]any) { e["traceId"] = "4BF92F3577B34DA6A3CE929D0E0E4736" }, wantErr: true},
		{name: "traceId short", mutate: func(e, data map[string]any) { e["traceId"] = "4bf92f35" }, wantErr: true},
		{name: "idempotencyKey of another type", mutate: func(e, data map[string]any) { e["idempotencyKey"] = "o1#Other#1" }, wantErr: true},
		{name: "extra envelope field", mutate: func(e, data map[string]any) { e["schema"] = map[string]any{} }, wantErr: true},
		{name: "data missing", mutate: func(e, data map[string]any) { delete(e, "data") }, wantErr: true},
		{name: "extra data field", mutate: func(e, data map[string]any) { data["note"] = "x" }, wantErr: true},
		{name: "data fields missing", mutate: func(e, data map[string]any) {
			// Every field: removing one picked by map order was flaky, for an optional one passes.
			for k := range data {
				delete(data, k)
			}
		}, wantErr: true},
	}
	for eventType, d := range validData() {
		for _, tt := range tests {
			t.Run(eventType+"/"+tt.name, func(t *testing.T) {
				data := clone(t, d.data)
				e := envelope(eventType, d.aggregateType, data)
				tt.mutate(e, data)
				err := v.Validate(eventType, 1, mustJSON(t, e))
				if gotErr := err != nil; gotErr != tt.wantErr {
					t.Fatalf("Validate() error = %v, wantErr %v", err, tt.wantErr)
				}
			})
		}
	}
}

func TestValidateDataRules(t *testing.T) {
	v, err := schemas.New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tests := []struct {
		name      string
		eventType string
		field     string
		value     any
		wantErr   bool
	}{
		{name: "amount zero", eventType: "OrderCreated", field: "amount", value: 0},
		{name: "amount negative", eventType: "OrderCreated", field: "amount", value: -1, wantErr: true},
		{name: "amount fractional", eventType: "PaymentAuthorized", field: "amount", value: 100.5, wantErr: true},
		{name: "amount as string", eventType: "PaymentVoided", field: "amount", value: "100", wantErr: true},
		{name: "currency lower case", eventType: "OrderCompleted", field: "currency", value: "krw", wantErr: true},
		{name: "currency too long", eventType: "StockReserved", field: "currency", value: "KRWX", wantErr: true},
		{name: "items empty", eventType: "StockReleased", field: "items", value: []any{}, wantErr: true},
		{name: "qty zero", eventType: "StockCommitted", field: "items", value: []any{map[string]any{"sku": "A", "qty": 0, "unitPrice": 1}}, wantErr: true},
		{name: "unitPrice negative", eventType: "OrderCanceled", field: "items", value: []any{map[string]any{"sku": "A", "qty": 1, "unitPrice": -5}}, wantErr: true},
		{name: "item extra field", eventType: "OrderCreated", field: "items", value: []any{map[string]any{"sku": "A", "qty": 1, "unitPrice": 5, "name": "x"}}, wantErr: true},
		{name: "item without sku", eventType: "OrderCreated", field: "items", value: []any{map[string]any{"qty": 1, "unitPrice": 5}}, wantErr: true},
		{name: "cancel reason PAYMENT_FAILED", eventType: "OrderCanceled", field: "reason", value: "PAYMENT_FAILED"},
		{name: "cancel reason unknown", eventType: "OrderCanceled", field: "reason", value: "BORED", wantErr: true},
		{name: "payment reason GATEWAY_TIMEOUT", eventType: "PaymentFailed", field: "reason", value: "GATEWAY_TIMEOUT"},
		{name: "payment reason GATEWAY_MISMATCH", eventType: "PaymentFailed", field: "reason", value: "GATEWAY_MISMATCH"},
		{name: "payment reason OUT_OF_STOCK", eventType: "PaymentFailed", field: "reason", value: "OUT_OF_STOCK", wantErr: true},
		{name: "skus empty", eventType: "StockReservationFailed", field: "skus", value: []any{}, wantErr: true},
		{name: "skus duplicated", eventType: "StockReservationFailed", field: "skus", value: []any{"A", "A"}, wantErr: true},
		{name: "orderId not a uuid", eventType: "OrderCompleted", field: "orderId", value: "o1", wantErr: true},
		{name: "customerId 128 characters", eventType: "OrderCreated", field: "customerId", value: strings.Repeat("고", 128)},
		{name: "customerId 129 characters", eventType: "OrderCreated", field: "customerId", value: strings.Repeat("a", 129), wantErr: true},
		{name: "customerId with a control character", eventType: "OrderCreated", field: "customerId", value: "U\u00011", wantErr: true},
		{name: "customerId with a tab", eventType: "OrderCreated", field: "customerId", value: "U\t1", wantErr: true},
		{name: "customerId with a space", eventType: "OrderCreated", field: "customerId", value: "Kim Min-jun"},
		{name: "paymentToken 129 characters", eventType: "StockReserved", field: "paymentToken", value: strings.Repeat("t", 129), wantErr: true},
		{name: "qty 10000", eventType: "OrderCreated", field: "items", value: []any{map[string]any{"sku": "A", "qty": 10000, "unitPrice": 1}}},
		{name: "qty 10001", eventType: "OrderCreated", field: "items", value: []any{map[string]any{"sku": "A", "qty": 10001, "unitPrice": 1}}, wantErr: true},
		{name: "qty max int64", eventType: "StockReserved", field: "items", value: []any{map[string]any{"sku": "A", "qty": int64(math.MaxInt64), "unitPrice": 1}}, wantErr: true},
		{name: "unitPrice 10^12", eventType: "OrderCreated", field: "items", value: []any{map[string]any{"sku": "A", "qty": 1, "unitPrice": 1_000_000_000_000}}},
		{name: "unitPrice over 10^12", eventType: "OrderCreated", field: "items", value: []any{map[string]any{"sku": "A", "qty": 1, "unitPrice": 1_000_000_000_001}}, wantErr: true},
		{name: "sku 64 characters", eventType: "StockCommitted", field: "items", value: []any{map[string]any{"sku": strings.Repeat("S", 64), "qty": 1, "unitPrice": 1}}},
		{name: "sku 65 characters", eventType: "StockCommitted", field: "items", value: []any{map[string]any{"sku": strings.Repeat("S", 65), "qty": 1, "unitPrice": 1}}, wantErr: true},
		{name: "sku with a slash", eventType: "OrderCreated", field: "items", value: []any{map[string]any{"sku": "A/1", "qty": 1, "unitPrice": 1}}, wantErr: true},
		{name: "50 lines", eventType: "OrderCreated", field: "items", value: lines(50)},
		{name: "51 lines", eventType: "OrderCreated", field: "items", value: lines(51), wantErr: true},
		{name: "amount at its bound", eventType: "OrderCreated", field: "amount", value: int64(500_000_000_000_000_000)},
		{name: "amount over its bound", eventType: "PaymentAuthorized", field: "amount", value: int64(500_000_000_000_000_001), wantErr: true},
		{name: "pgTxnId 129 characters", eventType: "PaymentVoided", field: "pgTxnId", value: strings.Repeat("p", 129), wantErr: true},
		{name: "skus 51", eventType: "StockReservationFailed", field: "skus", value: skus(51), wantErr: true},
		{name: "deliveryId not a uuid", eventType: "DeliveryShipped", field: "deliveryId", value: "d1", wantErr: true},
		{name: "delivery of 50 lines", eventType: "DeliveryScheduled", field: "items", value: lines(50)},
		{name: "delivery of 51 lines", eventType: "DeliveryScheduled", field: "items", value: lines(51), wantErr: true},
		{name: "delivery without items", eventType: "DeliveryScheduled", field: "items", value: []any{}, wantErr: true},
		{name: "dead letter key 257 characters", eventType: "DeadLettered", field: "key", value: strings.Repeat("k", 257), wantErr: true},
		{name: "dead letter error 2049 characters", eventType: "DeadLettered", field: "error", value: strings.Repeat("e", 2049), wantErr: true},
		{name: "dead letter value excerpt 513 characters", eventType: "DeadLettered", field: "valueExcerpt", value: strings.Repeat("v", 513), wantErr: true},
		{name: "dead letter negative offset", eventType: "DeadLettered", field: "offset", value: -1, wantErr: true},
		{name: "dead letter empty error", eventType: "DeadLettered", field: "error", value: "", wantErr: true},
	}
	all := validData()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := all[tt.eventType]
			data := clone(t, d.data)
			data[tt.field] = tt.value
			err := v.Validate(tt.eventType, 1, mustJSON(t, envelope(tt.eventType, d.aggregateType, data)))
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("Validate() error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestUnknownEvent(t *testing.T) {
	v, err := schemas.New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tests := []struct {
		name      string
		eventType string
		version   int
		wantKnown bool
	}{
		{name: "known", eventType: "OrderCreated", version: 1, wantKnown: true},
		{name: "unknown version", eventType: "OrderCreated", version: 99},
		{name: "unknown type", eventType: "OrderShipped", version: 1},
		{name: "empty type", eventType: "", version: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := v.Known(tt.eventType, tt.version); got != tt.wantKnown {
				t.Fatalf("Known() = %v, want %v", got, tt.wantKnown)
			}
			err := v.Validate(tt.eventType, tt.version, []byte(`{}`))
			if got := errors.Is(err, schemas.ErrUnknownEvent); got == tt.wantKnown {
				t.Fatalf("Validate() error = %v, want ErrUnknownEvent: %v", err, !tt.wantKnown)
			}
		})
	}
}

func TestEveryTypeHasASchema(t *testing.T) {
	v, err := schemas.New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for eventType := range validData() {
		if !v.Known(eventType, 1) {
			t.Errorf("no schema for %s v1", eventType)
		}
	}
}

func TestValidateRejectsNonJSON(t *testing.T) {
	v, err := schemas.New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := v.Validate("OrderCreated", 1, []byte(`{"eventId":`)); err == nil {
		t.Fatal("Validate() of truncated JSON = nil, want error")
	}
}

// lines returns n order lines with distinct SKUs.
func lines(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"sku": fmt.Sprintf("SKU-%d", i), "qty": 1, "unitPrice": 1}
	}
	return out
}

// skus returns n distinct SKUs.
func skus(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprintf("SKU-%d", i)
	}
	return out
}

func clone(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal(mustJSON(t, m), &out); err != nil {
		t.Fatalf("clone: %v", err)
	}
	return out
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

// TestGenerator: every generated event, ordinary or extreme, is accepted by its schema.
func TestGenerator(t *testing.T) {
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, extreme := range []bool{false, true} {
		g, err := schemas.NewGenerator(42)
		if err != nil {
			t.Fatal(err)
		}
		g.Extreme = extreme
		types := g.EventTypes()
		names, err := filepath.Glob("*.json")
		if err != nil {
			t.Fatal(err)
		}
		if len(types) != len(names) {
			t.Fatalf("generator knows %d event types and versions, want %d (one per schema)", len(types), len(names))
		}
		for _, et := range types {
			for i := 0; i < 200; i++ {
				raw, err := g.Event(et.Type, et.Version)
				if err != nil {
					t.Fatal(err)
				}
				if err := v.Validate(et.Type, et.Version, raw); err != nil {
					t.Fatalf("extreme=%v: generated %s is invalid: %v\n%s", extreme, et.Type, err, raw)
				}
			}
		}
	}
}

// BenchmarkValidate validates a valid envelope of every event type (what a consumer and the
// outbox do for each event): ns and allocations per event.
func BenchmarkValidate(b *testing.B) {
	v, err := schemas.New()
	if err != nil {
		b.Fatal(err)
	}
	type sample struct {
		eventType string
		raw       []byte
	}
	var samples []sample
	for eventType, d := range validData() {
		raw, err := json.Marshal(envelope(eventType, d.aggregateType, d.data))
		if err != nil {
			b.Fatal(err)
		}
		samples = append(samples, sample{eventType, raw})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s := samples[i%len(samples)]
		if err := v.Validate(s.eventType, 1, s.raw); err != nil {
			b.Fatal(err)
		}
	}
}

package schemas_test

import (
	"encoding/json"
	"errors"
	"testing"

	"outboxsaga.dev/schemas"
)

// validData holds a valid data object and the aggregate type of every event type.
func validData() map[string]struct {
	aggregateType string
	data          map[string]any
} {
	type d = map[string]any
	items := []any{d{"sku": "A100", "qty": 2, "unitPrice": 15000}}
	return map[string]struct {
		aggregateType string
		data          map[string]any
	}{
		"OrderCreated":           {"order", d{"orderId": "o1", "customerId": "U1", "items": items, "amount": 30000, "currency": "KRW", "paymentToken": "tok_ok"}},
		"OrderCompleted":         {"order", d{"orderId": "o1", "items": items, "amount": 30000, "currency": "KRW"}},
		"OrderCanceled":          {"order", d{"orderId": "o1", "reason": "TIMEOUT", "items": items}},
		"StockReserved":          {"inventory", d{"orderId": "o1", "items": items, "amount": 30000, "currency": "KRW", "paymentToken": "tok_ok"}},
		"StockReservationFailed": {"inventory", d{"orderId": "o1", "reason": "OUT_OF_STOCK", "skus": []any{"A100"}}},
		"StockReleased":          {"inventory", d{"orderId": "o1", "items": items}},
		"StockCommitted":         {"inventory", d{"orderId": "o1", "items": items}},
		"PaymentAuthorized":      {"payment", d{"orderId": "o1", "amount": 30000, "currency": "KRW", "pgTxnId": "pg_1"}},
		"PaymentFailed":          {"payment", d{"orderId": "o1", "reason": "CARD_DECLINED", "amount": 30000, "currency": "KRW"}},
		"PaymentVoided":          {"payment", d{"orderId": "o1", "amount": 30000, "currency": "USD", "pgTxnId": "pg_1"}},
		"DeadLettered": {"dead-letter", d{"service": "inventory", "topic": "order-events", "partition": 0, "offset": 42,
			"key": "o1", "eventId": "", "eventType": "", "error": "decode: invalid character", "attempts": 1}},
	}
}

// envelope returns a valid envelope of eventType as a map the test can break.
func envelope(eventType, aggregateType string, data map[string]any) map[string]any {
	return map[string]any{
		"eventId":        "6f1c2a4e-8a7b-4c1d-9e2f-3a4b5c6d7e8f",
		"eventType":      eventType,
		"eventVersion":   1,
		"aggregateType":  aggregateType,
		"aggregateId":    "o1",
		"occurredAt":     "2025-01-02T03:04:05.123456Z",
		"traceId":        "4bf92f3577b34da6a3ce929d0e0e4736",
		"idempotencyKey": "o1#" + eventType + "#1",
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
		{name: "wrong aggregateType", mutate: func(e, data map[string]any) { e["aggregateType"] = "shipping" }, wantErr: true},
		{name: "empty aggregateId", mutate: func(e, data map[string]any) { e["aggregateId"] = "" }, wantErr: true},
		{name: "occurredAt not a date-time", mutate: func(e, data map[string]any) { e["occurredAt"] = "yesterday" }, wantErr: true},
		{name: "occurredAt not UTC", mutate: func(e, data map[string]any) { e["occurredAt"] = "2025-01-02T12:04:05+09:00" }, wantErr: true},
		{name: "traceId upper case", mutate: func(e, data map[string]any) { e["traceId"] = "4BF92F3577B34DA6A3CE929D0E0E4736" }, wantErr: true},
		{name: "traceId short", mutate: func(e, data map[string]any) { e["traceId"] = "4bf92f35" }, wantErr: true},
		{name: "idempotencyKey of another type", mutate: func(e, data map[string]any) { e["idempotencyKey"] = "o1#Other#1" }, wantErr: true},
		{name: "extra envelope field", mutate: func(e, data map[string]any) { e["schema"] = map[string]any{} }, wantErr: true},
		{name: "data missing", mutate: func(e, data map[string]any) { delete(e, "data") }, wantErr: true},
		{name: "extra data field", mutate: func(e, data map[string]any) { data["note"] = "x" }, wantErr: true},
		{name: "data field missing", mutate: func(e, data map[string]any) {
			for k := range data {
				delete(data, k)
				return
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
		{name: "payment reason OUT_OF_STOCK", eventType: "PaymentFailed", field: "reason", value: "OUT_OF_STOCK", wantErr: true},
		{name: "skus empty", eventType: "StockReservationFailed", field: "skus", value: []any{}, wantErr: true},
		{name: "skus duplicated", eventType: "StockReservationFailed", field: "skus", value: []any{"A", "A"}, wantErr: true},
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
		{name: "unknown version", eventType: "OrderCreated", version: 2},
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

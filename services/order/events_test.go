package order_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/messaging/upcast"
	"outboxsaga.dev/order"
)

// TestFold: the one fold, over the streams an order can have; an event out of seq, a second
// ending or a delivery before the completion is refused.
func TestFold(t *testing.T) {
	id := uuid.New()
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	created := func(version int, channel string) order.Recorded {
		data := `{"orderId":"` + id.String() + `","customerId":"U1","items":[{"sku":"A100","qty":2,"unitPrice":15000}],"amount":30000,"currency":"KRW","paymentToken":"tok_ok"`
		if channel != "" {
			data += `,"channel":"` + channel + `"`
		}
		return order.Recorded{Seq: 1, EventID: "e1", EventType: order.EventOrderCreated, EventVersion: version, OccurredAt: t0,
			TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Data: json.RawMessage(data + "}"),
			Meta: order.Meta{DeadlineAt: t0.Add(30 * time.Second), IdempotencyKey: "k", RequestHash: "h"}}
	}
	completed := order.Recorded{Seq: 2, EventID: "e2", EventType: order.EventOrderCompleted, EventVersion: 1, OccurredAt: t0.Add(time.Second),
		Data: json.RawMessage(`{"orderId":"` + id.String() + `"}`)}
	canceled := order.Recorded{Seq: 2, EventID: "e2", EventType: order.EventOrderCanceled, EventVersion: 1, OccurredAt: t0.Add(time.Second),
		Data: json.RawMessage(`{"orderId":"` + id.String() + `","reason":"TIMEOUT"}`)}
	fact := func(eventType string, after time.Duration) order.Recorded {
		return order.Recorded{EventID: eventType, EventType: eventType, OccurredAt: t0.Add(after)}
	}
	tests := []struct {
		name         string
		events       []order.Recorded
		wantStatus   order.Status
		wantReason   order.Reason
		wantDelivery order.Delivery
		wantChannel  order.Channel
		wantVersion  int
		wantToken    string
		wantUpdated  time.Duration
		wantErr      bool
		wantNotFound bool
	}{
		{name: "placed, v2", events: []order.Recorded{created(2, "web")}, wantStatus: order.StatusPending, wantChannel: order.ChannelWeb, wantVersion: 1, wantToken: "tok_ok"},
		{name: "placed, v1 upcast", events: []order.Recorded{created(1, "")}, wantStatus: order.StatusPending, wantVersion: 1, wantToken: "tok_ok"},
		{name: "completed", events: []order.Recorded{created(2, "app"), completed}, wantStatus: order.StatusCompleted, wantChannel: order.ChannelApp,
			wantVersion: 2, wantUpdated: time.Second},
		{name: "canceled", events: []order.Recorded{created(1, ""), canceled}, wantStatus: order.StatusCanceled, wantReason: order.ReasonTimeout,
			wantVersion: 2, wantUpdated: time.Second},
		{name: "delivered", events: order.Merge([]order.Recorded{created(2, "api"), completed},
			[]order.Recorded{fact("DeliveryScheduled", 2*time.Second), fact("DeliveryShipped", 3*time.Second), fact("DeliveryScheduled", 4*time.Second)}),
			wantStatus: order.StatusCompleted, wantChannel: order.ChannelAPI, wantDelivery: order.DeliveryShipped, wantVersion: 2, wantUpdated: 3 * time.Second},
		{name: "a fact before the completion is skipped", events: order.Merge([]order.Recorded{created(2, "api")}, []order.Recorded{fact("DeliveryShipped", 0)}),
			wantStatus: order.StatusPending, wantChannel: order.ChannelAPI, wantVersion: 1, wantToken: "tok_ok"},
		{name: "nothing", events: nil, wantNotFound: true},
		{name: "a completion alone", events: []order.Recorded{{Seq: 1, EventType: order.EventOrderCompleted}}, wantErr: true},
		{name: "seq skipped", events: []order.Recorded{created(2, "web"), {Seq: 3, EventType: order.EventOrderCompleted}}, wantErr: true},
		{name: "two endings", events: []order.Recorded{created(2, "web"), completed, {Seq: 3, EventType: order.EventOrderCanceled, Data: canceled.Data}}, wantErr: true},
		{name: "an event not the order's", events: []order.Recorded{created(2, "web"), {Seq: 2, EventType: "StockReserved"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := order.Fold(tt.events, upcast.New())
			switch {
			case tt.wantNotFound:
				if fault.Code(err) != fault.NotFound {
					t.Fatalf("Fold = %+v, %v; want NotFound", o, err)
				}
				return
			case tt.wantErr:
				if err == nil {
					t.Fatalf("Fold = %+v, want an error", o)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if o.ID != id || o.Status != tt.wantStatus || o.Reason != tt.wantReason || o.Delivery != tt.wantDelivery || o.Channel != tt.wantChannel ||
				o.Version != tt.wantVersion || o.PaymentToken != tt.wantToken || !o.UpdatedAt.Equal(t0.Add(tt.wantUpdated)) ||
				!o.CreatedAt.Equal(t0) || !o.DeadlineAt.Equal(t0.Add(30*time.Second)) || o.IdempotencyKey != "k" || o.RequestHash != "h" ||
				o.Amount != 30000 || len(o.Items) != 1 || o.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Fatalf("Fold = %+v", o)
			}
		})
	}
}

package shipping_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/shipping"
)

const (
	orderID    = "0b9c6a1e-2f3d-4e5a-8b7c-9d0e1f2a3b4c"
	deliveryID = "5d2e7f90-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
	traceID    = "4bf92f3577b34da6a3ce929d0e0e4736"
)

var (
	at    = time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.FixedZone("KST", 9*3600))
	stamp = at.UTC().Truncate(time.Microsecond)
	lines = []shipping.Item{{SKU: "A100", Qty: 2, UnitPrice: 15000}}
)

func TestSchedule(t *testing.T) {
	tests := []struct {
		name             string
		order, id, trace string
		items            []shipping.Item
		wantCode         string // "" for success
	}{
		{name: "a completed order", order: orderID, id: deliveryID, trace: traceID, items: lines},
		{name: "50 lines", order: orderID, id: deliveryID, trace: traceID, items: make([]shipping.Item, 50)},
		{name: "order id not a uuid", order: "o1", id: deliveryID, trace: traceID, items: lines, wantCode: fault.Invalid},
		{name: "order id a uuid without dashes", order: strings.ReplaceAll(orderID, "-", ""), id: deliveryID, trace: traceID, items: lines, wantCode: fault.Invalid},
		{name: "delivery id not a uuid", order: orderID, id: "", trace: traceID, items: lines, wantCode: fault.Invalid},
		{name: "no lines", order: orderID, id: deliveryID, trace: traceID, wantCode: fault.Invalid},
		{name: "51 lines", order: orderID, id: deliveryID, trace: traceID, items: make([]shipping.Item, 51), wantCode: fault.Invalid},
		{name: "no trace", order: orderID, id: deliveryID, items: lines, wantCode: fault.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, e, err := shipping.Schedule(tt.order, tt.id, tt.items, tt.trace, at)
			if tt.wantCode != "" {
				if fault.Code(err) != tt.wantCode {
					t.Fatalf("Schedule() error = %v, want %s", err, tt.wantCode)
				}
				return
			}
			want := shipping.Delivery{OrderID: orderID, ID: deliveryID, Status: shipping.StatusPreparing, Items: tt.items,
				UpdatedAt: stamp, CreatedAt: stamp, TraceID: traceID}
			wantEvent := messaging.Event{Type: shipping.EventDeliveryScheduled,
				Data: shipping.DeliveryScheduledData{OrderID: orderID, DeliveryID: deliveryID, Items: tt.items}}
			if err != nil || !reflect.DeepEqual(d, want) || !reflect.DeepEqual(e, wantEvent) {
				t.Fatalf("Schedule() = %+v, %+v, %v; want %+v, %+v", d, e, err, want, wantEvent)
			}
			if tp := d.Trace(); tp.TraceID() != traceID {
				t.Errorf("Trace() = %s, want a span in trace %s", tp, traceID)
			}
		})
	}
}

// A delivery moves one step at a time, forward only, and never past DELIVERED.
func TestAdvance(t *testing.T) {
	later := at.Add(time.Minute)
	tests := []struct {
		from, want shipping.Status
		wantEvent  string
		wantCode   string
	}{
		{from: shipping.StatusPreparing, want: shipping.StatusShipped, wantEvent: shipping.EventDeliveryShipped},
		{from: shipping.StatusShipped, want: shipping.StatusDelivered, wantEvent: shipping.EventDeliveryDelivered},
		{from: shipping.StatusDelivered, want: shipping.StatusDelivered, wantCode: fault.Conflict},
		{from: "LOST", want: "LOST", wantCode: fault.Internal},
	}
	for _, tt := range tests {
		t.Run(string(tt.from), func(t *testing.T) {
			d, _, err := shipping.Schedule(orderID, deliveryID, lines, traceID, at)
			if err != nil {
				t.Fatal(err)
			}
			d.Status = tt.from
			e, err := d.Advance(later)
			if (err != nil || tt.wantCode != "") && fault.Code(err) != tt.wantCode {
				t.Fatalf("Advance() error = %v, want %q", err, tt.wantCode)
			}
			wantUpdated, wantEvent := stamp, messaging.Event{}
			if tt.wantCode == "" {
				wantUpdated = later.UTC().Truncate(time.Microsecond)
				wantEvent = messaging.Event{Type: tt.wantEvent, Data: shipping.StepData{OrderID: orderID, DeliveryID: deliveryID}}
			}
			if d.Status != tt.want || !d.UpdatedAt.Equal(wantUpdated) || !reflect.DeepEqual(e, wantEvent) {
				t.Errorf("after Advance() the delivery is %s at %s with event %+v; want %s at %s with %+v",
					d.Status, d.UpdatedAt, e, tt.want, wantUpdated, wantEvent)
			}
		})
	}
	d := shipping.Delivery{OrderID: orderID, Status: shipping.StatusDelivered}
	if _, err := d.Advance(later); fault.Reason(err) != "already_delivered" {
		t.Errorf("Advance(DELIVERED) reason = %q, want already_delivered", fault.Reason(err))
	}
}

// A delivery whose trace id is unusable (never stored: Schedule refuses it) still gets a trace.
func TestTraceWithoutTraceID(t *testing.T) {
	if tp := (shipping.Delivery{}).Trace(); tp.IsZero() {
		t.Error("Trace() of a delivery without trace id is zero, want a new trace")
	}
}

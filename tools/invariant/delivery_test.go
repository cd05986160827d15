package invariant

import (
	"fmt"
	"strings"
	"testing"
)

// collect returns an addFunc that gathers violations as "<invariant>: <detail>".
func collect(got *[]string) addFunc {
	return func(n int, _, format string, args ...any) {
		*got = append(*got, fmt.Sprintf("%d: ", n)+fmt.Sprintf(format, args...))
	}
}

// delivered is what Kafka holds for a delivered order: each step once, in order.
func delivered() orderEvents {
	return orderEvents{"OrderCompleted": {"c1": 3}, "DeliveryScheduled": {"d1": 10}, "DeliveryShipped": {"d2": 11}, "DeliveryDelivered": {"d3": 12}}
}

func TestCheckDelivery(t *testing.T) {
	completed := OrderView{Status: "COMPLETED", Delivery: Delivered}
	found := afterSaga{found: true, delivery: DeliveryView{Status: Delivered}}
	tests := []struct {
		name string
		view OrderView
		evs  orderEvents
		a    afterSaga
		want string // a substring of the one violation; "" for none
	}{
		{name: "delivered", view: completed, evs: delivered(), a: found},
		{name: "no delivery", view: completed, evs: orderEvents{}, want: "no delivery"},
		{name: "stuck", view: OrderView{Status: "COMPLETED", Delivery: Shipped},
			evs: orderEvents{"DeliveryScheduled": {"d1": 10}, "DeliveryShipped": {"d2": 11}, "DeliveryDelivered": {"d3": 12}},
			a:   afterSaga{found: true, delivery: DeliveryView{Status: Shipped}}, want: "stopped at SHIPPED"},
		{name: "event missing", view: completed, evs: orderEvents{"DeliveryScheduled": {"d1": 10}, "DeliveryDelivered": {"d3": 12}},
			a: found, want: "no DeliveryShipped"},
		{name: "moved back", view: completed, evs: orderEvents{"DeliveryScheduled": {"d1": 10}, "DeliveryShipped": {"d2": 13}, "DeliveryDelivered": {"d3": 12}},
			a: found, want: "moved back"},
		{name: "canceled, none", view: OrderView{Status: "CANCELED", Reason: "OUT_OF_STOCK"}, evs: orderEvents{"OrderCanceled": {"x": 1}}},
		{name: "canceled with a delivery", view: OrderView{Status: "CANCELED", Reason: "TIMEOUT"}, evs: orderEvents{},
			a: afterSaga{found: true, delivery: DeliveryView{Status: Preparing}}, want: "CANCELED (TIMEOUT) but has a delivery"},
		{name: "canceled with a delivery event", view: OrderView{Status: "CANCELED"}, evs: orderEvents{"DeliveryScheduled": {"d1": 1}},
			want: "but has a delivery"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			(&Checker{}).checkDelivery("o1", tt.view, tt.evs, tt.a, collect(&got))
			if tt.want == "" && len(got) != 0 || tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)) {
				t.Fatalf("violations %q, want one with %q", got, tt.want)
			}
		})
	}
}

func TestCheckNotifications(t *testing.T) {
	entry := func(key, event string, deliveries int) Received {
		var r Received
		id, kind, _ := strings.Cut(key, ":")
		r.Key, r.Deliveries = key, deliveries
		r.Body.EventID, r.Body.Kind, r.Body.Event, r.Body.OrderID = id, kind, event, "o1"
		return r
	}
	completed := OrderView{Status: "COMPLETED", Delivery: Delivered}
	timeout := OrderView{Status: "CANCELED", Reason: "TIMEOUT"}
	canceled := orderEvents{"OrderCanceled": {"x1": 5}}
	forged := entry("c1:customer", "OrderCompleted", 1)
	forged.Body.EventID = "c9"
	tests := []struct {
		name        string
		view        OrderView
		evs         orderEvents
		received    []Received
		want        string
		wantRepeats int
	}{
		{name: "delivered", view: completed, evs: delivered(),
			received: []Received{entry("c1:customer", "OrderCompleted", 1), entry("d2:customer", "DeliveryShipped", 1)}},
		{name: "repeated under its key", view: completed, evs: delivered(),
			received: []Received{entry("c1:customer", "OrderCompleted", 3), entry("d2:customer", "DeliveryShipped", 1)}, wantRepeats: 2},
		{name: "shipping not told", view: completed, evs: delivered(),
			received: []Received{entry("c1:customer", "OrderCompleted", 1)}, want: "no notification under key d2:customer"},
		{name: "timeout alerts too", view: timeout, evs: canceled,
			received: []Received{entry("x1:customer", "OrderCanceled", 1), entry("x1:alert", "OrderCanceled", 1)}},
		{name: "timeout without its alert", view: timeout, evs: canceled,
			received: []Received{entry("x1:customer", "OrderCanceled", 1)}, want: "x1:alert"},
		{name: "alert for another reason", view: OrderView{Status: "CANCELED", Reason: "OUT_OF_STOCK"}, evs: canceled,
			received: []Received{entry("x1:customer", "OrderCanceled", 1), entry("x1:alert", "OrderCanceled", 1)}, want: "no such event"},
		{name: "event that did not happen", view: completed, evs: delivered(),
			received: []Received{entry("c1:customer", "OrderCompleted", 1), entry("d2:customer", "DeliveryShipped", 1),
				entry("z9:customer", "OrderCanceled", 1)}, want: "no such event"},
		{name: "body of another event", view: completed, evs: delivered(),
			received: []Received{forged, entry("d2:customer", "DeliveryShipped", 1)}, want: "carries the body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			repeats := (&Checker{}).checkNotifications("o1", tt.view, tt.evs, afterSaga{received: tt.received}, collect(&got))
			if tt.want == "" && len(got) != 0 || tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)) {
				t.Fatalf("violations %q, want one with %q", got, tt.want)
			}
			if repeats != tt.wantRepeats {
				t.Errorf("repeats = %d, want %d", repeats, tt.wantRepeats)
			}
		})
	}
}

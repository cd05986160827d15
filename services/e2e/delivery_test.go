package e2e

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"outboxsaga.dev/messaging/eventually"
)

// deliveryTimeout bounds how long a completed order's delivery takes to arrive: two carrier
// steps of SHIPPING_ADVANCE_AFTER (2 s by default) and the CDC hops between them.
const deliveryTimeout = 30 * time.Second

// delivery is the shipping service's answer to GET /deliveries/{orderId}.
type delivery struct {
	OrderID    string `json:"orderId"`
	DeliveryID string `json:"deliveryId"`
	Status     string `json:"status"`
	Items      []struct {
		SKU string `json:"sku"`
		Qty int    `json:"qty"`
	} `json:"items"`
}

// notified is one entry of the webhook sink: every POST under one Idempotency-Key.
type notified struct {
	Key        string `json:"key"`
	Deliveries int    `json:"deliveries"`
	Body       struct {
		Text    string `json:"text"`
		Kind    string `json:"kind"`
		Event   string `json:"event"`
		OrderID string `json:"orderId"`
		EventID string `json:"eventId"`
	} `json:"body"`
}

func (n notified) String() string {
	return fmt.Sprintf("%s %s×%d", n.Body.Event, n.Body.Kind, n.Deliveries)
}

// received lists what the webhook sink got about orderID, one entry per key, with the sink's
// read token (WEBHOOKSINK_READ_TOKEN).
func received(tb testing.TB, u urls, orderID string) []notified {
	tb.Helper()
	var v []notified
	url := u.sink + "/received?orderId=" + orderID
	headers := map[string]string{"Authorization": "Bearer " + os.Getenv("WEBHOOKSINK_READ_TOKEN")}
	if code, raw := call(tb, http.MethodGet, url, nil, headers, &v); code != http.StatusOK {
		tb.Fatalf("GET %s: %d %s (is WEBHOOKSINK_READ_TOKEN set?)", url, code, raw)
	}
	return v
}

// waitNotified waits until check accepts what the webhook sink received about orderID; every
// entry's key must be its body's <eventId>:<kind> (the same key for every repeat).
func waitNotified(tb testing.TB, u urls, orderID string, check func([]notified) string) []notified {
	tb.Helper()
	var got []notified
	eventually.Holds(tb, deliveryTimeout, func() string {
		got = received(tb, u, orderID)
		for _, n := range got {
			if n.Key != n.Body.EventID+":"+n.Body.Kind || n.Body.OrderID != orderID {
				return fmt.Sprintf("entry %q: body of event %s, kind %s, order %s", n.Key, n.Body.EventID, n.Body.Kind, n.Body.OrderID)
			}
		}
		return check(got)
	})
	return got
}

// events says which events the entries tell of, as "<event>/<kind>", sorted.
func events(ns []notified) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Body.Event+"/"+n.Body.Kind)
	}
	slices.Sort(out)
	return out
}

// wantEvents is a check for waitNotified: exactly the events in want, each POSTed once.
func wantEvents(want ...string) func([]notified) string {
	slices.Sort(want)
	return func(got []notified) string {
		if !slices.Equal(events(got), want) {
			return fmt.Sprintf("notified %v, want %v", got, want)
		}
		for _, n := range got {
			if n.Deliveries != 1 {
				return fmt.Sprintf("%s was POSTed %d times; without a fault, once", n.Key, n.Deliveries)
			}
		}
		return ""
	}
}

// TestDeliveryAndNotifications follows the saga past its end (invariants 5 and 6 for one order
// of each outcome): a completed order gets one delivery that moves forward to DELIVERED, the order
// shows it, and the customer hears of the confirmation and the shipping; a canceled order gets no
// delivery, and its customer hears of the cancel; a saga deadline also alerts the operators.
func TestDeliveryAndNotifications(t *testing.T) {
	t.Parallel()
	u := stackURLs()

	t.Run("completed", func(t *testing.T) {
		t.Parallel()
		sku := newSKU(t, u, 2)
		id := orderEnding(t, u, "tok_ok", "COMPLETED", item{SKU: sku, Qty: 2, UnitPrice: 700})
		var o order
		eventually.Holds(t, deliveryTimeout, func() string {
			if o = getOrder(t, u, id); o.Delivery != "DELIVERED" {
				return fmt.Sprintf("order %s: delivery %q", id, o.Delivery)
			}
			return ""
		})
		if o.Status != "COMPLETED" {
			t.Fatalf("a delivery moved the order to %s", o.Status)
		}
		d := get[delivery](t, u.shipping+"/deliveries/"+id)
		if d.OrderID != id || d.Status != "DELIVERED" || len(d.Items) != 1 || d.Items[0].SKU != sku || d.Items[0].Qty != 2 {
			t.Fatalf("delivery %+v, want DELIVERED with 2 × %s", d, sku)
		}
		// The order's timeline shows the delivery's three steps, in order.
		var timeline []struct {
			EventType string `json:"eventType"`
		}
		if code, raw := call(t, http.MethodGet, u.order+"/orders/"+id+"/events", nil, customerHeader(t, e2eCustomer), &timeline); code != http.StatusOK {
			t.Fatalf("GET /orders/%s/events: %d %s", id, code, raw)
		}
		var steps []string
		for _, e := range timeline {
			if strings.HasPrefix(e.EventType, "Delivery") {
				steps = append(steps, e.EventType)
			}
		}
		if want := []string{"DeliveryScheduled", "DeliveryShipped", "DeliveryDelivered"}; !slices.Equal(steps, want) {
			t.Errorf("delivery steps in the timeline %v, want %v", steps, want)
		}
		// The operator cannot move a delivered delivery further.
		code, raw := call(t, http.MethodPost, u.shipping+"/deliveries/"+id+"/advance", nil, adminHeader(), nil)
		if code != http.StatusConflict || !strings.Contains(string(raw), "already_delivered") {
			t.Errorf("advance a delivered delivery: %d %s, want 409 already_delivered", code, raw)
		}
		waitNotified(t, u, id, wantEvents("OrderCompleted/customer", "DeliveryShipped/customer"))
	})

	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		sku := newSKU(t, u, 5)
		id := orderEnding(t, u, "tok_declined", "CANCELED", item{SKU: sku, Qty: 1, UnitPrice: 700})
		// The customer's notice comes from the same OrderCanceled the shipping service reads:
		// once it is here, a delivery would have been created as well.
		waitNotified(t, u, id, wantEvents("OrderCanceled/customer"))
		if code, raw := call(t, http.MethodGet, u.shipping+"/deliveries/"+id, nil, customerHeader(t, e2eCustomer), nil); code != http.StatusNotFound {
			t.Errorf("GET /deliveries of a canceled order: %d %s, want 404", code, raw)
		}
		if o := getOrder(t, u, id); o.Delivery != "" {
			t.Errorf("canceled order shows delivery %q", o.Delivery)
		}
	})
}

// TestRepeatedEventsNotifyOnce sends the events of a delivered order again, byte for byte: the
// shipping service creates no second delivery, the order's delivery stays where it is, and the
// webhook gets no second POST.
func TestRepeatedEventsNotifyOnce(t *testing.T) {
	t.Parallel()
	u := stackURLs()
	kc, from := watch(t, "order-events", "shipping-events")
	sku := newSKU(t, u, 1)
	id := placeOrder(t, u, "tok_ok", item{SKU: sku, Qty: 1, UnitPrice: 300})
	records := recordsFor(t, kc, from, id, sagaTimeout+deliveryTimeout,
		"OrderCompleted", "DeliveryScheduled", "DeliveryShipped", "DeliveryDelivered")
	before := waitNotified(t, u, id, wantEvents("OrderCompleted/customer", "DeliveryShipped/customer"))
	first := get[delivery](t, u.shipping+"/deliveries/"+id)

	resend(t, kc, records)
	if again := get[delivery](t, u.shipping+"/deliveries/"+id); again.DeliveryID != first.DeliveryID || again.Status != "DELIVERED" {
		t.Errorf("delivery after the repeats %+v, want %+v", again, first)
	}
	if o := getOrder(t, u, id); o.Status != "COMPLETED" || o.Delivery != "DELIVERED" {
		t.Errorf("order after the repeats %s, delivery %q", o.Status, o.Delivery)
	}
	if after := received(t, u, id); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("webhook after the repeats %v, want %v", after, before)
	}
}

// TestWebhookDownThenUp stops the webhook sink, lets an order complete and ship, and starts the
// sink again: every notification arrives then, each under its one key, and the outage put nothing
// in the notification service's dead letters (an outage is never poison). It runs before the
// parallel tests, so the sink's absence disturbs no other test.
func TestWebhookDownThenUp(t *testing.T) {
	u := stackURLs()
	deadBefore := deadLetterCount(t, u.notification)
	start := stopService(t, "webhooksink")
	sku := newSKU(t, u, 1)
	id := orderEnding(t, u, "tok_ok", "COMPLETED", item{SKU: sku, Qty: 1, UnitPrice: 400})
	eventually.Holds(t, deliveryTimeout, func() string {
		if o := getOrder(t, u, id); o.Delivery != "DELIVERED" {
			return fmt.Sprintf("delivery %q", o.Delivery)
		}
		return ""
	})
	start()
	waitNotified(t, u, id, func(got []notified) string {
		if want := []string{"DeliveryShipped/customer", "OrderCompleted/customer"}; !slices.Equal(events(got), want) {
			return fmt.Sprintf("notified %v, want %v", got, want)
		}
		return ""
	})
	if n := deadLetterCount(t, u.notification); n != deadBefore {
		t.Errorf("the notification service has %d dead letters after the outage, %d before", n, deadBefore)
	}
}

package notification_test

import (
	"strings"
	"testing"

	"outboxsaga.dev/notification"
)

// TestFor: each notified event gives exactly its notifications, in order, with the keys
// <eventId>:<kind>, the event's type and aggregate id, and texts that say what happened.
func TestFor(t *testing.T) {
	const order = "0b7e8f52-3f6e-4d2a-9a51-1c2d3e4f5a6b"
	ev := func(typ, aggregateID string, d notification.Data) notification.Event {
		return notification.Event{ID: "e1", Type: typ, AggregateID: aggregateID, Data: d}
	}
	deadLetter := notification.Data{Service: "inventory", Topic: "order-events", Partition: 2, Offset: 41,
		EventID: "e0", EventType: "OrderCreated", Attempts: 5, Error: `decode: "paymentToken": "tok_secret" <!channel> & more`}
	for _, tc := range []struct {
		name  string
		event notification.Event
		want  []string // per notification: kind, then parts of its text
	}{
		{"completed", ev("OrderCompleted", order, notification.Data{OrderID: order}),
			[]string{"customer|Your order " + order + " is confirmed"}},
		{"canceled out of stock", ev("OrderCanceled", order, notification.Data{OrderID: order, Reason: "OUT_OF_STOCK"}),
			[]string{"customer|was canceled: an item is out of stock"}},
		{"canceled payment", ev("OrderCanceled", order, notification.Data{OrderID: order, Reason: "PAYMENT_FAILED"}),
			[]string{"customer|the payment did not go through"}},
		{"canceled timeout", ev("OrderCanceled", order, notification.Data{OrderID: order, Reason: "TIMEOUT"}),
			[]string{"customer|could not be completed in time", "alert|canceled by the saga deadline (TIMEOUT)|" + order}},
		{"canceled unknown reason", ev("OrderCanceled", order, notification.Data{OrderID: order, Reason: "<b>"}),
			[]string{"customer|reason &lt;b&gt;"}},
		{"shipped", ev("DeliveryShipped", order, notification.Data{OrderID: order, DeliveryID: "d-9"}),
			[]string{"customer|Your order " + order + " is on its way (delivery d-9)"}},
		{"dead lettered", ev("DeadLettered", order, deadLetter),
			[]string{"alert|Dead letter in inventory: OrderCreated e0 from order-events (partition 2, offset 41, key " + order + ") after 5 attempt(s)|" +
				`"paymentToken": "[redacted]" &lt;!channel&gt; &amp; more|GET /dead-letters on inventory`}},
		{"dead lettered undecodable", ev("DeadLettered", "sha256:ab", notification.Data{Service: "order", Topic: "payment-events", Error: "x\ny"}),
			[]string{"alert|an undecodable record from payment-events|key sha256:ab|: x y."}},
		{"not notified", ev("OrderCreated", order, notification.Data{OrderID: order}), nil},
	} {
		got := notification.For(tc.event)
		if len(got) != len(tc.want) {
			t.Errorf("%s: For() = %+v, want %d notifications", tc.name, got, len(tc.want))
			continue
		}
		for i, n := range got {
			kind, parts, _ := strings.Cut(tc.want[i], "|")
			if string(n.Kind) != kind || n.Event != tc.event.Type || n.OrderID != tc.event.AggregateID || n.EventID != "e1" || n.Key() != "e1:"+kind {
				t.Errorf("%s: notification %d = %+v (key %s), want a %s one about the event", tc.name, i, n, n.Key(), kind)
			}
			for _, part := range strings.Split(parts, "|") {
				if !strings.Contains(n.Text, part) {
					t.Errorf("%s: text %q lacks %q", tc.name, n.Text, part)
				}
			}
			if strings.Contains(n.Text, "tok_") || strings.Contains(n.Text, "<!") {
				t.Errorf("%s: text %q quotes a token or Slack markup", tc.name, n.Text)
			}
		}
	}
}

// TestQuoteBounds: what a text quotes from an event is cut short.
func TestQuoteBounds(t *testing.T) {
	n := notification.For(notification.Event{ID: "e1", Type: "DeadLettered", AggregateID: strings.Repeat("k", 300),
		Data: notification.Data{Service: "order", Topic: "t", Error: strings.Repeat("é", 5000)}})
	if len(n) != 1 || !strings.Contains(n[0].Text, strings.Repeat("é", 300)+"…") || strings.Contains(n[0].Text, strings.Repeat("é", 301)) ||
		!strings.Contains(n[0].Text, strings.Repeat("k", 128)+"…") || len(n[0].Text) > 1200 {
		t.Errorf("For() = %q, want the error cut at 300 characters and the key at 128", n)
	}
}

// TestLoops: only this service's own dead letters of dead-letter-events are the loop to guard.
func TestLoops(t *testing.T) {
	for _, tc := range []struct {
		typ, service, topic string
		want                bool
	}{
		{"DeadLettered", "notification", "dead-letter-events", true},
		{"DeadLettered", "notification", "order-events", false},
		{"DeadLettered", "inventory", "dead-letter-events", false},
		{"OrderCanceled", "notification", "dead-letter-events", false},
	} {
		e := notification.Event{Type: tc.typ, Data: notification.Data{Service: tc.service, Topic: tc.topic}}
		if got := e.Loops(); got != tc.want {
			t.Errorf("Loops(%s from %s on %s) = %v, want %v", tc.typ, tc.service, tc.topic, got, tc.want)
		}
	}
}

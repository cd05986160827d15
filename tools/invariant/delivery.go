package invariant

import (
	"context"
	"fmt"
	"net/url"
	"slices"
)

// The statuses of a delivery, in the only order it may take them.
const (
	Preparing = "PREPARING"
	Shipped   = "SHIPPED"
	Delivered = "DELIVERED"
)

// deliverySteps are the delivery events in the order the shipping service emits them, with the
// status each one moves the delivery to.
var deliverySteps = []struct{ event, status string }{
	{"DeliveryScheduled", Preparing}, {"DeliveryShipped", Shipped}, {"DeliveryDelivered", Delivered},
}

// DeliveryView is GET /deliveries/{orderId} of the shipping service.
type DeliveryView struct {
	OrderID    string `json:"orderId"`
	DeliveryID string `json:"deliveryId"`
	Status     string `json:"status"`
}

// Delivery reads the delivery of one order (found=false on 404), as the operator.
func (e Endpoints) Delivery(ctx context.Context, orderID string) (DeliveryView, bool, error) {
	return getFound[DeliveryView](ctx, e.ShippingURL+"/deliveries/"+url.PathEscape(orderID), e.AdminToken)
}

// Received is one entry of the webhook sink: every POST it got under one Idempotency-Key.
type Received struct {
	Key        string `json:"key"`
	Deliveries int    `json:"deliveries"`
	Body       struct {
		Kind    string `json:"kind"`
		Event   string `json:"event"`
		OrderID string `json:"orderId"`
		EventID string `json:"eventId"`
	} `json:"body"`
}

// maxReceived is the most entries the sink lists for one order (its MaxLimit).
const maxReceived = 1000

// Received reads what the webhook sink got about one order.
func (e Endpoints) Received(ctx context.Context, orderID string) ([]Received, error) {
	var rs []Received
	_, err := getRetry(ctx, fmt.Sprintf("%s/received?orderId=%s&limit=%d", e.SinkURL, url.QueryEscape(orderID), maxReceived), e.SinkReadToken, &rs)
	return rs, err
}

// afterSaga is what the pipeline did for one order after its saga: its delivery and what the
// webhook received about it.
type afterSaga struct {
	delivery DeliveryView
	found    bool
	received []Received
}

// readAfterSaga reads the delivery and the notifications of every order in ids.
func (c *Checker) readAfterSaga(ctx context.Context, ids []string) (map[string]afterSaga, error) {
	out := make([]afterSaga, len(ids))
	err := parallel(ctx, len(ids), c.workers(), func(ctx context.Context, i int) error {
		d, found, err := c.Endpoints.Delivery(ctx, ids[i])
		if err != nil {
			return fmt.Errorf("delivery: %w", err)
		}
		rs, err := c.Endpoints.Received(ctx, ids[i])
		if err != nil {
			return fmt.Errorf("webhook sink: %w", err)
		}
		out[i] = afterSaga{delivery: d, found: found, received: rs}
		return nil
	})
	if err != nil {
		return nil, err
	}
	m := make(map[string]afterSaga, len(ids))
	for i, id := range ids {
		m[id] = out[i]
	}
	return m, nil
}

// checkDelivery: invariant 5. A COMPLETED order has exactly one delivery, which has come all
// the way (Quiesce waited for it), its events on Kafka in their one order; a CANCELED order has
// none, and no delivery event.
func (c *Checker) checkDelivery(id string, v OrderView, evs orderEvents, a afterSaga, add addFunc) {
	var onKafka []string
	for _, st := range deliverySteps {
		if evs.has(st.event) {
			onKafka = append(onKafka, st.event)
		}
	}
	switch v.Status {
	case "CANCELED":
		if a.found || len(onKafka) > 0 || v.Delivery != "" {
			add(5, id, "CANCELED (%s) but has a delivery: shipping %q, events %v, order shows %q", v.Reason, a.delivery.Status, onKafka, v.Delivery)
		}
		return
	case "COMPLETED":
	default:
		return
	}
	if !a.found {
		add(5, id, "COMPLETED but the shipping service has no delivery (events %v)", onKafka)
		return
	}
	if a.delivery.Status != Delivered || v.Delivery != Delivered {
		add(5, id, "delivery stopped at %s (the order shows %q)", a.delivery.Status, v.Delivery)
	}
	last := int64(-1)
	for _, st := range deliverySteps {
		ids := evs[st.event]
		if len(ids) == 0 {
			add(5, id, "delivery %s but no %s on Kafka", a.delivery.Status, st.event)
			continue
		}
		for _, off := range ids { // more than one id is a doubled effect (checkEvents)
			if off < last {
				add(5, id, "%s at offset %d comes before the step it follows (offset %d): the delivery moved back", st.event, off, last)
			}
			last = max(last, off)
		}
	}
}

// expectedKeys are the Idempotency-Keys of the notifications an order's events call for: the
// customer hears of its confirmation or cancel and of its shipping; a cancel by the saga deadline
// also alerts the operators.
func expectedKeys(v OrderView, evs orderEvents) []string {
	var keys []string
	for _, t := range []string{"OrderCompleted", "OrderCanceled", "DeliveryShipped"} {
		for eventID := range evs[t] {
			keys = append(keys, eventID+":customer")
			if t == "OrderCanceled" && v.Reason == "TIMEOUT" {
				keys = append(keys, eventID+":alert")
			}
		}
	}
	slices.Sort(keys)
	return keys
}

// checkNotifications: invariant 6. Every notification an order's events call for reached the
// webhook, every POST of one carried its key, and no key was sent for an event that did not
// happen. It returns how many POSTs repeated a key (at least once: allowed, and counted).
func (c *Checker) checkNotifications(id string, v OrderView, evs orderEvents, a afterSaga, add addFunc) (repeats int) {
	want := expectedKeys(v, evs)
	got := map[string]bool{}
	for _, r := range a.received {
		got[r.Key] = true
		repeats += max(r.Deliveries-1, 0)
		switch {
		case r.Key != r.Body.EventID+":"+r.Body.Kind:
			add(6, id, "key %q carries the body of event %s for %s", r.Key, r.Body.EventID, r.Body.Kind)
		case !slices.Contains(want, r.Key):
			add(6, id, "%s %s was sent (key %s) though no such event of the order calls for it", r.Body.Event, r.Body.Kind, r.Key)
		}
	}
	for _, k := range want {
		if !got[k] {
			add(6, id, "no notification under key %s reached the webhook (order %s/%s)", k, v.Status, v.Reason)
		}
	}
	return repeats
}

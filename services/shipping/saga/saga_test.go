package saga_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/shipping"
)

// One delivery per completed order, whatever comes again, and none for an order that did not
// complete; every OrderCompleted and OrderCreated (whose order it is) is recorded in the inbox, the
// ignored types are not. The same holds when the events come in one batch (one transaction, one
// commit).
func TestOrderEvents(t *testing.T) {
	const scheduled = shipping.DeliveryScheduledEvent
	tests := []struct {
		name       string
		events     func(t *testing.T, orderID string) []record
		wantStatus shipping.Status
		wantEvents []string
		wantInbox  int
	}{
		{name: "completed", wantStatus: shipping.Preparing, wantEvents: []string{scheduled}, wantInbox: 1,
			events: func(t *testing.T, id string) []record { return []record{created(t, id), completed(t, id)} }},
		{name: "redelivered", wantStatus: shipping.Preparing, wantEvents: []string{scheduled}, wantInbox: 1,
			events: func(t *testing.T, id string) []record { r := completed(t, id); return []record{r, r, r} }},
		{name: "the same OrderCompleted under a new event id", wantStatus: shipping.Preparing, wantEvents: []string{scheduled}, wantInbox: 2,
			events: func(t *testing.T, id string) []record { return []record{completed(t, id), completed(t, id)} }},
		{name: "canceled", wantStatus: "", wantEvents: nil, wantInbox: 0,
			events: func(t *testing.T, id string) []record { return []record{created(t, id), canceled(t, id)} }},
		{name: "an OrderCanceled after completion (never sent) changes nothing", wantStatus: shipping.Preparing, wantEvents: []string{scheduled}, wantInbox: 1,
			events: func(t *testing.T, id string) []record { return []record{completed(t, id), canceled(t, id)} }},
	}
	for _, tt := range tests {
		for _, batch := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/batch=%v", tt.name, batch), func(t *testing.T) {
				f, id := newFixture(t), uuid.NewString()
				events := tt.events(t, id)
				if batch {
					f.mustDeliverBatch(events...)
					if got := f.count(`SELECT count(DISTINCT xmin::text) FROM processed_events`); got > 1 {
						t.Errorf("the inbox was written by %d transactions, want at most the batch's", got)
					}
				} else {
					f.mustDeliver(events...)
				}
				if got := f.status(id); got != tt.wantStatus {
					t.Errorf("delivery status = %q, want %q", got, tt.wantStatus)
				}
				first := slices.IndexFunc(events, func(r record) bool { return r.Headers["eventType"] == "OrderCompleted" })
				if got := f.emitted(id, events[max(first, 0)].tp); !slices.Equal(got, tt.wantEvents) {
					t.Errorf("emitted %v, want %v", got, tt.wantEvents)
				}
				createdEvents := 0
				for _, r := range events {
					if r.Headers["eventType"] == "OrderCreated" {
						createdEvents++
					}
				}
				if got := f.count(`SELECT count(*) FROM processed_events`); got != tt.wantInbox+createdEvents {
					t.Errorf("inbox rows = %d, want %d (and %d of OrderCreated)", got, tt.wantInbox, createdEvents)
				}
				if got, want := f.count(`SELECT count(*) FROM order_customers WHERE customer_id = 'U1'`), min(createdEvents, 1); got != want {
					t.Errorf("customers recorded = %d, want %d", got, want)
				}
				if got, want := f.count(`SELECT count(*) FROM deliveries`), min(tt.wantInbox, 1); got != want {
					t.Errorf("deliveries = %d, want %d", got, want)
				}
				ignored := fmt.Sprintf(`
					# HELP shipping_completions_ignored_total OrderCompleted events (under a new event id) for an order that has its delivery already.
					# TYPE shipping_completions_ignored_total counter
					shipping_completions_ignored_total %d
				`, max(tt.wantInbox-1, 0))
				if err := testutil.GatherAndCompare(f.reg, strings.NewReader(ignored), "shipping_completions_ignored_total"); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

// DeliveryScheduled carries the order's lines.
func TestDeliveryScheduledCarriesTheItems(t *testing.T) {
	f, id := newFixture(t), uuid.NewString()
	f.mustDeliver(completed(t, id))
	events := pgtest.Emitted(t, f.db, id)
	var data shipping.DeliveryScheduledData
	if err := json.Unmarshal(events[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	d, err := f.deliveries.Get(context.Background(), id)
	want := shipping.DeliveryScheduledData{OrderID: id, DeliveryID: d.ID, Items: []shipping.Item{{SKU: "A100", Qty: 2, UnitPrice: 15000}}}
	if err != nil || !reflect.DeepEqual(data, want) || !reflect.DeepEqual(d.Items, want.Items) {
		t.Errorf("DeliveryScheduled %+v and delivery %+v (%v), want %+v", data, d, err, want)
	}
}

// Poison is Permanent (the consumer dead-letters it without retrying) and writes nothing, not
// even the inbox row.
func TestPoisonIsPermanentAndWritesNothing(t *testing.T) {
	id := uuid.NewString()
	tests := map[string]func(t *testing.T) record{
		"data names another order": func(t *testing.T) record {
			r := completed(t, id)
			r.Value = []byte(strings.Replace(string(r.Value), `"orderId":"`+id, `"orderId":"`+uuid.NewString(), 1))
			return r
		},
		"unknown event type": func(t *testing.T) record { return orderEvent(t, "OrderShipped", id, map[string]any{"orderId": id}) },
		"undecodable":        func(t *testing.T) record { r := completed(t, id); r.Value = []byte("{not json"); return r },
		"known, not for us": func(t *testing.T) record {
			return event(t, "inventory", "StockReleased", id, map[string]any{"orderId": id, "items": items})
		},
		"an unknown version": func(t *testing.T) record {
			r := completed(t, id)
			r.Value = []byte(strings.Replace(string(r.Value), `"eventVersion":1`, `"eventVersion":2`, 1))
			return r
		},
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			if err := f.deliver(r(t)); !messaging.IsPermanent(err) {
				t.Fatalf("deliver() error = %v, want a Permanent error", err)
			}
			if got := f.count(`SELECT (SELECT count(*) FROM processed_events) + (SELECT count(*) FROM deliveries) + (SELECT count(*) FROM outbox_seen)`); got != 0 {
				t.Errorf("inbox rows, deliveries and events = %d, want none", got)
			}
		})
	}
}

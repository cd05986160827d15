package saga_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"outboxsaga.dev/catalog"
	"outboxsaga.dev/catalog/app"
	"outboxsaga.dev/catalog/postgres"
	"outboxsaga.dev/catalog/saga"
	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/messaging/sagatest"
)

type fixture struct {
	*sagatest.Harness
	store *postgres.Catalog
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := sagatest.Open(t, "catalog", postgres.Migrations)
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	store := postgres.NewCatalog(db)
	return &fixture{Harness: sagatest.New(t, db, saga.New(db, app.New(store, seoul)).Router()), store: store}
}

// at returns r with its envelope's occurredAt set to when (the value re-encoded).
func at(t *testing.T, r sagatest.Record, when time.Time) sagatest.Record {
	t.Helper()
	r.Envelope.OccurredAt = when.UTC()
	v, err := json.Marshal(r.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	r.Value = v
	return r
}

func stock(t *testing.T, eventType, sku string, when time.Time) sagatest.Record {
	data := map[string]any{"sku": sku}
	if eventType == "StockReplenished" {
		data["available"] = 2
	}
	return at(t, sagatest.Event(t, "inventory", eventType, 1, sku, data), when)
}

func completed(t *testing.T, orderID string, when time.Time, lines ...any) sagatest.Record {
	items := make([]map[string]any, 0, len(lines)/2)
	for i := 0; i < len(lines); i += 2 {
		items = append(items, map[string]any{"sku": lines[i], "qty": lines[i+1], "unitPrice": 100})
	}
	return at(t, sagatest.Event(t, "order", "OrderCompleted", 1, orderID, map[string]any{
		"orderId": orderID, "items": items, "amount": 100, "currency": "KRW"}), when)
}

func canceled(t *testing.T, orderID string, lines ...any) sagatest.Record {
	items := make([]map[string]any, 0, len(lines)/2)
	for i := 0; i < len(lines); i += 2 {
		items = append(items, map[string]any{"sku": lines[i], "qty": lines[i+1], "unitPrice": 100})
	}
	return sagatest.Event(t, "order", "OrderCanceled", 1, orderID, map[string]any{"orderId": orderID, "reason": "PAYMENT_FAILED", "items": items})
}

func (f *fixture) product(t *testing.T, sku string) catalog.Product {
	t.Helper()
	p, err := f.store.Product(context.Background(), sku)
	if err != nil {
		t.Fatalf("Product(%s): %v", sku, err)
	}
	return p
}

func (f *fixture) ranking(t *testing.T, day string) []catalog.Rank {
	t.Helper()
	r, err := f.store.Ranking(context.Background(), day, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSoldOut: StockDepleted marks the SKU sold out since the event's time, StockReplenished
// clears it; a redelivery or an older event replayed late changes nothing; a stock event whose
// SKU is not its key is poison.
func TestSoldOut(t *testing.T) {
	f := newFixture(t)
	t0 := time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC)
	if _, err := f.store.Product(context.Background(), "A"); fault.Code(err) != fault.NotFound {
		t.Fatalf("a SKU never seen: %v, want not found", err)
	}
	dep := stock(t, "StockDepleted", "A", t0)
	f.MustDeliver(dep, dep)
	if p := f.product(t, "A"); !p.SoldOut || p.SoldOutAt == nil || !p.SoldOutAt.Equal(t0) {
		t.Fatalf("after StockDepleted: %+v, want sold out at %s", p, t0)
	}
	f.MustDeliver(stock(t, "StockReplenished", "A", t0.Add(-time.Second))) // older: ignored
	if p := f.product(t, "A"); !p.SoldOut {
		t.Fatalf("a stale StockReplenished undid a newer StockDepleted: %+v", p)
	}
	f.MustDeliver(stock(t, "StockReplenished", "A", t0.Add(time.Second)))
	if p := f.product(t, "A"); p.SoldOut || p.SoldOutAt != nil {
		t.Fatalf("after StockReplenished: %+v, want available", p)
	}
	bad := sagatest.Event(t, "inventory", "StockDepleted", 1, "B", map[string]any{"sku": "A"})
	if err := f.Deliver(bad); !messaging.IsPermanent(err) {
		t.Errorf("StockDepleted of A under key B: %v, want poison", err)
	}
}

// TestUnitsAndRanking: completed orders count per SKU and per day in the ranking's zone (Seoul),
// once each whatever the redeliveries or a second event id; canceled orders never count; the
// ranking orders by units, ties by SKU.
func TestUnitsAndRanking(t *testing.T) {
	f := newFixture(t)
	o1, o2, o3, o4 := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	day := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)    // 12:00 in Seoul, 2026-12-07
	late := time.Date(2026, 12, 7, 15, 30, 0, 0, time.UTC) // 00:30 on the 8th in Seoul

	c1 := completed(t, o1, day, "A", 2, "B", 1, "A", 1) // A×3 in one order
	f.MustDeliver(c1, c1)
	f.MustDeliver(completed(t, o1, day, "A", 3, "B", 1)) // the same order under a new event id
	f.MustDeliver(completed(t, o2, day, "B", 3))
	f.MustDeliver(completed(t, o3, late, "C", 5))
	f.MustDeliver(canceled(t, o4, "A", 9))

	if got := f.product(t, "A").UnitsSold; got != 3 {
		t.Errorf("units of A = %d, want 3", got)
	}
	if got := f.product(t, "B").UnitsSold; got != 4 {
		t.Errorf("units of B = %d, want 4", got)
	}
	want := []catalog.Rank{{Rank: 1, SKU: "B", Units: 4, Orders: 2}, {Rank: 2, SKU: "A", Units: 3, Orders: 1}}
	if got := f.ranking(t, "2026-12-07"); !reflect.DeepEqual(got, want) {
		t.Errorf("ranking of 2026-12-07 = %v, want %v", got, want)
	}
	if got, want := f.ranking(t, "2026-12-08"), []catalog.Rank{{Rank: 1, SKU: "C", Units: 5, Orders: 1}}; !reflect.DeepEqual(got, want) {
		t.Errorf("ranking of 2026-12-08 (Seoul) = %v, want %v", got, want)
	}
	if got := f.ranking(t, "2026-12-06"); len(got) != 0 || got == nil {
		t.Errorf("a day without sales = %#v, want []", got)
	}
	// Ties by SKU ascending.
	f.MustDeliver(completed(t, uuid.NewString(), day, "AA", 3))
	if got := f.ranking(t, "2026-12-07"); len(got) != 3 || got[1].SKU != "A" || got[2].SKU != "AA" {
		t.Errorf("a tie at 3 units: %v, want A before AA", got)
	}
}

// TestIgnoresTheRestOfItsTopics: every other event of inventory-events and order-events passes
// without effect; an unknown one is poison.
func TestIgnoresTheRestOfItsTopics(t *testing.T) {
	f := newFixture(t)
	o := uuid.NewString()
	items := []map[string]any{{"sku": "A", "qty": 1, "unitPrice": 100}}
	for _, r := range []sagatest.Record{
		sagatest.Event(t, "order", "OrderCreated", 2, o, map[string]any{"orderId": o, "customerId": "U1", "items": items, "amount": 100, "currency": "KRW", "paymentToken": "tok_ok", "channel": "web"}),
		sagatest.Event(t, "inventory", "StockReserved", 1, o, map[string]any{"orderId": o, "items": items, "amount": 100, "currency": "KRW", "paymentToken": "tok_ok"}),
		sagatest.Event(t, "inventory", "StockCommitted", 1, o, map[string]any{"orderId": o, "items": items}),
	} {
		if err := f.Deliver(r); err != nil {
			t.Errorf("%s: %v", r.Envelope.EventType, err)
		}
	}
	if _, err := f.store.Product(context.Background(), "A"); fault.Code(err) != fault.NotFound {
		t.Errorf("ignored events made a product: %v", err)
	}
	if err := f.Router.Dispatch(context.Background(), &messaging.Message{Envelope: messaging.Envelope{EventType: "PaymentAuthorized", EventVersion: 1}}); !messaging.IsPermanent(err) {
		t.Errorf("an event of another topic: %v, want poison", err)
	}
}

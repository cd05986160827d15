package saga_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/customer"
	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/messaging/sagatest"
	"outboxsaga.dev/order"
	"outboxsaga.dev/order/app"
	"outboxsaga.dev/order/postgres"
	"outboxsaga.dev/order/saga"
)

// stockRecord is a StockDepleted or StockReplenished of sku, keyed by the SKU, as the inventory's
// outbox makes it, occurred at at.
func stockRecord(t *testing.T, eventType, sku string, at time.Time) *messaging.Message {
	t.Helper()
	data := map[string]any{"sku": sku}
	if eventType == order.EventStockReplenished {
		data["available"] = 3
	}
	tp := messaging.NewTraceparent()
	e, err := messaging.NewEnvelope("inventory", sku, eventType, 1, data, tp)
	if err != nil {
		t.Fatal(err)
	}
	e.OccurredAt = at.UTC()
	value, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return &messaging.Message{
		Traceparent: tp,
		Record: messaging.Record{Topic: messaging.TopicInventory, Key: sku, Value: value,
			Headers: map[string]string{"id": e.EventID, "eventType": eventType, "traceparent": tp.String()}},
	}
}

// TestSoldOutBothSidesOfTheWindow: before the order service hears StockDepleted, an order for
// the SKU is placed and its saga ends OUT_OF_STOCK as ever; once it heard, POST /orders is refused
// at once with 409 sold_out naming the SKU (no order, no saga); after StockReplenished orders are
// placed again. A redelivery changes nothing, and an older event replayed late never undoes a
// newer state.
func TestSoldOutBothSidesOfTheWindow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := app.New(app.Config{DB: e.db, Orders: e.orders, Events: e.events, Prices: postgres.NewPrices(e.db), Availability: postgres.NewAvailability(e.db)})
	h := sagatest.New(t, e.db, saga.New(e.db, a, e.metrics).Router()).Handler()
	deliver := func(m *messaging.Message) {
		t.Helper()
		if err := h(ctx, m); err != nil {
			t.Fatalf("deliver %s: %v", m.Headers["eventType"], err)
		}
	}
	if _, err := postgres.NewPrices(e.db).Set(ctx, order.Price{SKU: "A100", UnitPrice: 1000, Currency: "KRW"}); err != nil {
		t.Fatal(err)
	}
	place := func() (app.Placed, error) {
		return a.PlaceOrder(ctx, app.PlaceOrder{Caller: customer.Caller{Customer: "U1"}, Trace: messaging.NewTraceparent(),
			Draft: order.Draft{CustomerID: "U1", Currency: "KRW", PaymentToken: "tok_ok", Lines: []order.Line{{SKU: "A100", Qty: 1}}}})
	}

	// Before it hears: the order is placed, the inventory fails it, the saga ends OUT_OF_STOCK.
	before, err := place()
	if err != nil {
		t.Fatalf("PlaceOrder before StockDepleted: %v", err)
	}
	deliver(record(t, before.Order, order.EventStockReservationFailed))
	if got, _ := e.orders.Get(ctx, before.Order.ID); got.Status != order.StatusCanceled || got.Reason != order.ReasonOutOfStock {
		t.Fatalf("order before the window closed: %s %s, want CANCELED OUT_OF_STOCK", got.Status, got.Reason)
	}

	// After: refused at once, 409 sold_out naming the SKU, nothing written.
	t0 := time.Now().UTC()
	depleted := stockRecord(t, order.EventStockDepleted, "A100", t0)
	deliver(depleted)
	deliver(redeliver(depleted))
	ordersBefore := e.count(`SELECT count(*) FROM orders`)
	_, err = place()
	if fault.Code(err) != fault.Conflict || fault.Reason(err) != order.CodeSoldOut || fault.Fields(err)["sku"] != "A100" {
		t.Fatalf("PlaceOrder after StockDepleted = %v (reason %s, fields %v), want 409 sold_out sku A100", err, fault.Reason(err), fault.Fields(err))
	}
	if n := e.count(`SELECT count(*) FROM orders`); n != ordersBefore {
		t.Errorf("orders after a refusal: %d, want %d (no saga)", n, ordersBefore)
	}

	// An older StockReplenished replayed late is ignored: still sold out.
	deliver(stockRecord(t, order.EventStockReplenished, "A100", t0.Add(-time.Minute)))
	if _, err := place(); fault.Reason(err) != order.CodeSoldOut {
		t.Fatalf("PlaceOrder after a stale StockReplenished = %v, want sold_out", err)
	}

	// Replenished: placed again.
	deliver(stockRecord(t, order.EventStockReplenished, "A100", t0.Add(time.Second)))
	if _, err := place(); err != nil {
		t.Fatalf("PlaceOrder after StockReplenished: %v", err)
	}

	// A StockDepleted whose key is not its SKU contradicts itself: poison.
	bad := rawRecord(t, messaging.TopicInventory, "inventory", "B200", order.EventStockDepleted, map[string]any{"sku": "A100"}, messaging.NewTraceparent())
	if err := h(ctx, bad); !messaging.IsPermanent(err) {
		t.Errorf("StockDepleted under another key: %v, want permanent", err)
	}
}

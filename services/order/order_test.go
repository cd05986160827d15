package order_test

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/order"
)

func validDraft() order.Draft {
	return order.Draft{
		CustomerID:   "U1",
		Currency:     "KRW",
		PaymentToken: "tok_ok",
		Lines:        []order.Line{{SKU: "A100", Qty: 2}, {SKU: "B200", Qty: 1, UnitPrice: price(9000)}},
	}
}

// listPrices is the price list of the tests.
func listPrices() map[string]order.Price {
	return map[string]order.Price{
		"A100": {SKU: "A100", UnitPrice: 15000, Currency: "KRW"},
		"B200": {SKU: "B200", UnitPrice: 9000, Currency: "KRW"},
		"U300": {SKU: "U300", UnitPrice: 7, Currency: "USD"},
	}
}

func price(p int64) *int64 { return &p }

func TestNew(t *testing.T) {
	id := uuid.New()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	lines := func(n int, qty int64) []order.Line {
		out := make([]order.Line, n)
		for i := range out {
			out[i] = order.Line{SKU: fmt.Sprintf("SKU-%02d", i), Qty: qty}
		}
		return out
	}
	// priced sets a price for each of n SKU-xx.
	priced := func(n int, unit int64) func(map[string]order.Price) {
		return func(ps map[string]order.Price) {
			for i := range n {
				sku := fmt.Sprintf("SKU-%02d", i)
				ps[sku] = order.Price{SKU: sku, UnitPrice: unit, Currency: "KRW"}
			}
		}
	}
	tests := []struct {
		name       string
		edit       func(*order.Draft)
		prices     func(map[string]order.Price)
		wantAmount int64
		wantCode   string // the code the caller sees; "" = valid
		wantErr    string // part of the error's message
	}{
		{name: "valid", edit: func(*order.Draft) {}, wantAmount: 39000},
		{name: "free item", edit: func(d *order.Draft) { d.Lines = []order.Line{{SKU: "F1", Qty: 3}} },
			prices: func(ps map[string]order.Price) { ps["F1"] = order.Price{SKU: "F1", Currency: "KRW"} }, wantAmount: 0},
		{name: "50 lines", edit: func(d *order.Draft) { d.Lines = lines(50, 1) }, prices: priced(50, 1), wantAmount: 50},
		{name: "the largest order", edit: func(d *order.Draft) { d.Lines = lines(50, order.MaxQty) }, prices: priced(50, order.MaxUnitPrice),
			wantAmount: 500_000_000_000_000_000},
		{name: "128-character customer, multi-byte", edit: func(d *order.Draft) { d.CustomerID = strings.Repeat("김", 128) }, wantAmount: 39000},
		{name: "customer with spaces and symbols", edit: func(d *order.Draft) { d.CustomerID = `Kim "MJ" <kim@example.com> 😀` }, wantAmount: 39000},
		{name: "sku of every allowed character", edit: func(d *order.Draft) { d.Lines[0].SKU = "Az09._-" + strings.Repeat("x", 57) },
			prices: func(ps map[string]order.Price) {
				sku := "Az09._-" + strings.Repeat("x", 57)
				ps[sku] = order.Price{SKU: sku, UnitPrice: 15000, Currency: "KRW"}
			}, wantAmount: 39000},
		{name: "the price the client was shown", edit: func(d *order.Draft) { d.Lines[0].UnitPrice = price(15000) }, wantAmount: 39000},
		{name: "a price that changed", edit: func(d *order.Draft) { d.Lines[0].UnitPrice = price(1) },
			wantCode: order.CodePriceChanged, wantErr: "items[0].unitPrice: A100 now costs 15000, not 1"},
		{name: "a SKU without price", edit: func(d *order.Draft) { d.Lines[1].SKU = "NOPRICE" },
			wantCode: order.CodeUnknownSKU, wantErr: "items[1].sku: NOPRICE has no price"},
		{name: "a SKU priced in another currency", edit: func(d *order.Draft) { d.Lines[1].SKU = "U300" },
			wantCode: order.CodeCurrencyMismatch, wantErr: "items[1].sku: U300 is priced in USD, the order is in KRW"},
		{name: "no customer", edit: func(d *order.Draft) { d.CustomerID = "" }, wantCode: fault.Invalid, wantErr: "customerId is required"},
		{name: "129-character customer", edit: func(d *order.Draft) { d.CustomerID = strings.Repeat("a", 129) }, wantCode: fault.Invalid, wantErr: "customerId must be at most 128 characters"},
		{name: "NUL in customer", edit: func(d *order.Draft) { d.CustomerID = "U\x001" }, wantCode: fault.Invalid, wantErr: "customerId must hold printable characters only"},
		{name: "tab in customer", edit: func(d *order.Draft) { d.CustomerID = "U\t1" }, wantCode: fault.Invalid, wantErr: "customerId must hold printable characters only"},
		{name: "right-to-left override in customer", edit: func(d *order.Draft) { d.CustomerID = "U\u202e1" }, wantCode: fault.Invalid, wantErr: "customerId must hold printable characters only"},
		{name: "invalid UTF-8 in customer", edit: func(d *order.Draft) { d.CustomerID = "U\xff" }, wantCode: fault.Invalid, wantErr: "customerId must be valid UTF-8"},
		{name: "newline in token", edit: func(d *order.Draft) { d.PaymentToken = "tok\nok" }, wantCode: fault.Invalid, wantErr: "paymentToken must hold printable characters only"},
		{name: "129-character token", edit: func(d *order.Draft) { d.PaymentToken = strings.Repeat("t", 129) }, wantCode: fault.Invalid, wantErr: "paymentToken must be at most 128 characters"},
		{name: "no token", edit: func(d *order.Draft) { d.PaymentToken = "" }, wantCode: fault.Invalid, wantErr: "paymentToken is required"},
		{name: "NUL in sku", edit: func(d *order.Draft) { d.Lines[0].SKU = "A\x00" }, wantCode: fault.Invalid, wantErr: "items[0].sku: a SKU holds only letters"},
		{name: "slash in sku", edit: func(d *order.Draft) { d.Lines[1].SKU = "A/1" }, wantCode: fault.Invalid, wantErr: "items[1].sku: a SKU holds only letters"},
		{name: "65-character sku", edit: func(d *order.Draft) { d.Lines[0].SKU = strings.Repeat("S", 65) }, wantCode: fault.Invalid, wantErr: "items[0].sku: a SKU has 1 to 64 characters"},
		{name: "empty sku", edit: func(d *order.Draft) { d.Lines[1].SKU = "" }, wantCode: fault.Invalid, wantErr: "items[1].sku: a SKU has 1 to 64 characters"},
		{name: "duplicate sku", edit: func(d *order.Draft) { d.Lines[1].SKU = d.Lines[0].SKU }, wantCode: fault.Invalid, wantErr: "items[1].sku: A100 is already on line 0"},
		{name: "lowercase currency", edit: func(d *order.Draft) { d.Currency = "krw" }, wantCode: fault.Invalid, wantErr: "currency must be 3 capital letters"},
		{name: "long currency", edit: func(d *order.Draft) { d.Currency = "KRWX" }, wantCode: fault.Invalid, wantErr: "currency must be 3 capital letters"},
		{name: "no currency", edit: func(d *order.Draft) { d.Currency = "" }, wantCode: fault.Invalid, wantErr: "currency must be 3 capital letters"},
		{name: "no items", edit: func(d *order.Draft) { d.Lines = nil }, wantCode: fault.Invalid, wantErr: "items must hold at least 1 line"},
		{name: "51 lines", edit: func(d *order.Draft) { d.Lines = lines(51, 1) }, prices: priced(51, 1), wantCode: fault.Invalid, wantErr: "items must hold at most 50 lines"},
		{name: "zero qty", edit: func(d *order.Draft) { d.Lines[0].Qty = 0 }, wantCode: fault.Invalid, wantErr: "items[0].qty must be from 1 to 10000"},
		{name: "qty 10001", edit: func(d *order.Draft) { d.Lines[0].Qty = 10_001 }, wantCode: fault.Invalid, wantErr: "items[0].qty must be from 1 to 10000"},
		{name: "qty max int64", edit: func(d *order.Draft) { d.Lines[0].Qty = math.MaxInt64 }, wantCode: fault.Invalid, wantErr: "items[0].qty must be from 1 to 10000"},
		{name: "negative shown price", edit: func(d *order.Draft) { d.Lines[1].UnitPrice = price(-1) }, wantCode: fault.Invalid, wantErr: "items[1].unitPrice must be from 0 to 1000000000000"},
		{name: "shown price over 10^12", edit: func(d *order.Draft) { d.Lines[1].UnitPrice = price(order.MaxUnitPrice + 1) }, wantCode: fault.Invalid, wantErr: "items[1].unitPrice must be from 0 to 1000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDraft()
			tt.edit(&d)
			ps := listPrices()
			if tt.prices != nil {
				tt.prices(ps)
			}
			o, e, err := order.New(id, d, ps, now, 30*time.Second)
			if tt.wantCode != "" {
				if fault.Reason(err) != tt.wantCode || !strings.Contains(fault.Message(err), tt.wantErr) {
					t.Fatalf("New() error = %v (code %s), want %s containing %q", err, fault.Reason(err), tt.wantCode, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New() error = %v", err)
			}
			var items []order.Item
			for _, l := range d.Lines {
				items = append(items, order.Item{SKU: l.SKU, Qty: l.Qty, UnitPrice: ps[l.SKU].UnitPrice})
			}
			want := order.Order{
				ID: id, CustomerID: d.CustomerID, Status: order.StatusPending, Items: items, Amount: tt.wantAmount,
				Currency: d.Currency, PaymentToken: d.PaymentToken, Channel: order.DefaultChannel,
				CreatedAt: now, UpdatedAt: now, DeadlineAt: now.Add(30 * time.Second),
			}
			if !reflect.DeepEqual(o, want) {
				t.Fatalf("New() order = %+v, want %+v", o, want)
			}
			wantEvent := messaging.Event{Type: order.EventOrderCreated, Data: order.CreatedData{
				OrderID: id.String(), CustomerID: d.CustomerID, Items: items, Amount: tt.wantAmount,
				Currency: d.Currency, PaymentToken: d.PaymentToken, Channel: order.DefaultChannel,
			}}
			if !reflect.DeepEqual(e, wantEvent) {
				t.Fatalf("New() event = %+v, want %+v", e, wantEvent)
			}
		})
	}
}

func TestCheckPayment(t *testing.T) {
	o := order.Order{ID: uuid.New(), Amount: 39000, Currency: "KRW"}
	tests := []struct {
		name     string
		amount   int64
		currency string
		ok       bool
	}{
		{"the order's", 39000, "KRW", true},
		{"another amount", 1, "KRW", false},
		{"another currency", 39000, "USD", false},
	}
	for _, tt := range tests {
		if err := o.CheckPayment(tt.amount, tt.currency); (err == nil) != tt.ok || err != nil && fault.Code(err) != fault.Invalid {
			t.Errorf("%s: CheckPayment = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

// transition is a case of TestTransitions: an order in from (fromReason) acted on.
type transition struct {
	name       string
	from       order.Status
	fromReason order.Reason
	act        func(*order.Order) (messaging.Event, bool)
	wantStatus order.Status
	wantReason order.Reason
	wantEvent  func(o order.Order) messaging.Event // nil: ignored
}

func TestTransitions(t *testing.T) {
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	later := created.Add(time.Second)
	tests := []transition{
		{
			name: "complete pending", from: order.StatusPending,
			act:        func(o *order.Order) (messaging.Event, bool) { return o.Complete(later) },
			wantStatus: order.StatusCompleted,
			wantEvent: func(o order.Order) messaging.Event {
				return messaging.Event{Type: order.EventOrderCompleted, Data: order.CompletedData{
					OrderID: o.ID.String(), Items: o.Items, Amount: o.Amount, Currency: o.Currency}}
			},
		},
		{
			name: "complete completed is ignored", from: order.StatusCompleted,
			act:        func(o *order.Order) (messaging.Event, bool) { return o.Complete(later) },
			wantStatus: order.StatusCompleted,
		},
		{
			name: "complete canceled is ignored", from: order.StatusCanceled, fromReason: order.ReasonTimeout,
			act:        func(o *order.Order) (messaging.Event, bool) { return o.Complete(later) },
			wantStatus: order.StatusCanceled, wantReason: order.ReasonTimeout,
		},
		{
			name: "cancel completed is ignored", from: order.StatusCompleted,
			act:        func(o *order.Order) (messaging.Event, bool) { return o.Cancel(order.ReasonPaymentFailed, later) },
			wantStatus: order.StatusCompleted,
		},
		{
			name: "cancel canceled keeps the first reason", from: order.StatusCanceled, fromReason: order.ReasonOutOfStock,
			act:        func(o *order.Order) (messaging.Event, bool) { return o.Cancel(order.ReasonTimeout, later) },
			wantStatus: order.StatusCanceled, wantReason: order.ReasonOutOfStock,
		},
	}
	for _, reason := range []order.Reason{order.ReasonOutOfStock, order.ReasonPaymentFailed, order.ReasonTimeout} {
		tests = append(tests, transition{
			name: "cancel pending " + string(reason), from: order.StatusPending,
			act:        func(o *order.Order) (messaging.Event, bool) { return o.Cancel(reason, later) },
			wantStatus: order.StatusCanceled, wantReason: reason,
			wantEvent: func(o order.Order) messaging.Event {
				return messaging.Event{Type: order.EventOrderCanceled, Data: order.CanceledData{OrderID: o.ID.String(), Reason: reason, Items: o.Items}}
			},
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, _, err := order.New(uuid.New(), validDraft(), listPrices(), created, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			o.Status, o.Reason = tt.from, tt.fromReason
			e, ok := tt.act(&o)
			if o.Status != tt.wantStatus || o.Reason != tt.wantReason {
				t.Fatalf("after: %s %q, want %s %q", o.Status, o.Reason, tt.wantStatus, tt.wantReason)
			}
			if tt.wantEvent == nil {
				if ok || !reflect.DeepEqual(e, messaging.Event{}) || !o.UpdatedAt.Equal(created) {
					t.Fatalf("terminal order moved: ok=%v event=%+v updatedAt=%v", ok, e, o.UpdatedAt)
				}
				return
			}
			if !ok || !reflect.DeepEqual(e, tt.wantEvent(o)) {
				t.Fatalf("event = %+v (ok=%v), want %+v", e, ok, tt.wantEvent(o))
			}
			if !o.UpdatedAt.Equal(later) {
				t.Fatalf("updatedAt = %v, want %v", o.UpdatedAt, later)
			}
		})
	}
}

func TestStatusTerminal(t *testing.T) {
	tests := []struct {
		status order.Status
		want   bool
	}{
		{order.StatusPending, false},
		{order.StatusCompleted, true},
		{order.StatusCanceled, true},
	}
	for _, tt := range tests {
		if got := tt.status.Terminal(); got != tt.want {
			t.Errorf("%s.Terminal() = %v, want %v", tt.status, got, tt.want)
		}
	}
}

func TestTrack(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name     string
		status   order.Status
		from, to order.Delivery
		moved    bool
		wantErr  bool
	}{
		{name: "scheduled", status: order.StatusCompleted, to: order.DeliveryPreparing, moved: true},
		{name: "shipped", status: order.StatusCompleted, from: order.DeliveryPreparing, to: order.DeliveryShipped, moved: true},
		{name: "delivered before shipped is seen", status: order.StatusCompleted, from: order.DeliveryPreparing, to: order.DeliveryDelivered, moved: true},
		{name: "a late scheduled", status: order.StatusCompleted, from: order.DeliveryShipped, to: order.DeliveryPreparing},
		{name: "delivered again", status: order.StatusCompleted, from: order.DeliveryDelivered, to: order.DeliveryDelivered},
		{name: "for a canceled order", status: order.StatusCanceled, to: order.DeliveryPreparing, wantErr: true},
		{name: "for a pending order", status: order.StatusPending, to: order.DeliveryShipped, wantErr: true},
		{name: "an unknown status", status: order.StatusCompleted, to: "LOST", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := order.Order{ID: uuid.New(), Status: tt.status, Delivery: tt.from}
			moved, err := o.Track(tt.to, now)
			if moved != tt.moved || (err != nil) != tt.wantErr || err != nil && fault.Code(err) != fault.Invalid {
				t.Fatalf("Track(%s) from %q = %v, %v; want moved %v, error %v", tt.to, tt.from, moved, err, tt.moved, tt.wantErr)
			}
			if want := map[bool]order.Delivery{true: tt.to, false: tt.from}[moved]; o.Delivery != want {
				t.Fatalf("delivery is %q, want %q", o.Delivery, want)
			}
		})
	}
}

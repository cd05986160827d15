package inventory_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"outboxsaga.dev/inventory"
	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
)

func stockOf(rows ...inventory.Stock) map[string]inventory.Stock {
	m := make(map[string]inventory.Stock, len(rows))
	for _, r := range rows {
		m[r.SKU] = r
	}
	return m
}

func TestQuantities(t *testing.T) {
	tests := []struct {
		name  string
		items []inventory.Item
		want  []inventory.Quantity
	}{
		{name: "none", items: nil, want: nil},
		{name: "one", items: []inventory.Item{{SKU: "A", Qty: 2}}, want: []inventory.Quantity{{SKU: "A", Qty: 2}}},
		{
			name:  "sorted by sku and repeated skus summed",
			items: []inventory.Item{{SKU: "C", Qty: 1}, {SKU: "A", Qty: 2}, {SKU: "C", Qty: 3}, {SKU: "B", Qty: 1}},
			want:  []inventory.Quantity{{SKU: "A", Qty: 2}, {SKU: "B", Qty: 1}, {SKU: "C", Qty: 4}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := inventory.Quantities(tt.items); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Quantities() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReserve(t *testing.T) {
	order := func(items ...inventory.Item) inventory.Order {
		return inventory.Order{ID: "o1", Items: items, Amount: 39000, Currency: "KRW", PaymentToken: "tok_ok"}
	}
	tests := []struct {
		name      string
		order     inventory.Order
		stock     map[string]inventory.Stock
		want      inventory.Change
		wantFault string
	}{
		{
			name:  "every item available",
			order: order(inventory.Item{SKU: "A", Qty: 2, UnitPrice: 15000}, inventory.Item{SKU: "B", Qty: 1, UnitPrice: 9000}),
			stock: stockOf(inventory.Stock{SKU: "A", Available: 5, Reserved: 1, Sold: 3}, inventory.Stock{SKU: "B", Available: 1}),
			want: inventory.Change{
				Outcome: inventory.OutcomeReserved,
				Reservation: inventory.Reservation{OrderID: "o1", Status: inventory.StatusReserved,
					Items: []inventory.Item{{SKU: "A", Qty: 2, UnitPrice: 15000}, {SKU: "B", Qty: 1, UnitPrice: 9000}}},
				Stock: []inventory.Stock{{SKU: "A", Available: 3, Reserved: 3, Sold: 3}, {SKU: "B", Available: 0, Reserved: 1}},
				Events: []messaging.Event{{Type: inventory.EventStockReserved, Data: inventory.StockReservedData{
					OrderID:      "o1",
					Items:        []inventory.Item{{SKU: "A", Qty: 2, UnitPrice: 15000}, {SKU: "B", Qty: 1, UnitPrice: 9000}},
					Amount:       39000,
					Currency:     "KRW",
					PaymentToken: "tok_ok",
				}}},
				StockEvents: []inventory.StockEvent{{SKU: "B", Event: messaging.Event{Type: inventory.EventStockDepleted, Data: inventory.StockDepletedData{SKU: "B"}}}},
			},
		},
		{
			name:  "repeated sku summed and fits",
			order: order(inventory.Item{SKU: "A", Qty: 1}, inventory.Item{SKU: "A", Qty: 2}),
			stock: stockOf(inventory.Stock{SKU: "A", Available: 3}),
			want: inventory.Change{
				Outcome: inventory.OutcomeReserved,
				Reservation: inventory.Reservation{OrderID: "o1", Status: inventory.StatusReserved,
					Items: []inventory.Item{{SKU: "A", Qty: 1}, {SKU: "A", Qty: 2}}},
				Stock: []inventory.Stock{{SKU: "A", Available: 0, Reserved: 3}},
				Events: []messaging.Event{{Type: inventory.EventStockReserved, Data: inventory.StockReservedData{
					OrderID: "o1", Items: []inventory.Item{{SKU: "A", Qty: 1}, {SKU: "A", Qty: 2}},
					Amount: 39000, Currency: "KRW", PaymentToken: "tok_ok",
				}}},
				StockEvents: []inventory.StockEvent{{SKU: "A", Event: messaging.Event{Type: inventory.EventStockDepleted, Data: inventory.StockDepletedData{SKU: "A"}}}},
			},
		},
		{
			name:  "repeated sku summed and short",
			order: order(inventory.Item{SKU: "A", Qty: 2}, inventory.Item{SKU: "A", Qty: 2}),
			stock: stockOf(inventory.Stock{SKU: "A", Available: 3}),
			want:  failed([]inventory.Item{{SKU: "A", Qty: 2}, {SKU: "A", Qty: 2}}, "A"),
		},
		{
			name:  "one short: all or nothing",
			order: order(inventory.Item{SKU: "A", Qty: 1}, inventory.Item{SKU: "B", Qty: 2}),
			stock: stockOf(inventory.Stock{SKU: "A", Available: 5}, inventory.Stock{SKU: "B", Available: 1}),
			want:  failed([]inventory.Item{{SKU: "A", Qty: 1}, {SKU: "B", Qty: 2}}, "B"),
		},
		{
			name:  "unknown sku counts as out of stock",
			order: order(inventory.Item{SKU: "A", Qty: 1}, inventory.Item{SKU: "ZZZ", Qty: 1}),
			stock: stockOf(inventory.Stock{SKU: "A", Available: 5}),
			want:  failed([]inventory.Item{{SKU: "A", Qty: 1}, {SKU: "ZZZ", Qty: 1}}, "ZZZ"),
		},
		{
			name:  "every short sku is named, in sku order",
			order: order(inventory.Item{SKU: "C", Qty: 1}, inventory.Item{SKU: "A", Qty: 9}, inventory.Item{SKU: "B", Qty: 1}),
			stock: stockOf(inventory.Stock{SKU: "A", Available: 5}, inventory.Stock{SKU: "B", Available: 5}),
			want:  failed([]inventory.Item{{SKU: "C", Qty: 1}, {SKU: "A", Qty: 9}, {SKU: "B", Qty: 1}}, "A", "C"),
		},
		{
			name:  "reserved and sold do not count as available",
			order: order(inventory.Item{SKU: "A", Qty: 1}),
			stock: stockOf(inventory.Stock{SKU: "A", Available: 0, Reserved: 4, Sold: 9}),
			want:  failed([]inventory.Item{{SKU: "A", Qty: 1}}, "A"),
		},
		{name: "no order id", order: inventory.Order{Items: []inventory.Item{{SKU: "A", Qty: 1}}}, wantFault: fault.Invalid},
		{name: "no items", order: order(), wantFault: fault.Invalid},
		{name: "zero qty", order: order(inventory.Item{SKU: "A", Qty: 0}), wantFault: fault.Invalid},
		{name: "negative qty", order: order(inventory.Item{SKU: "A", Qty: -1}), wantFault: fault.Invalid},
		{name: "empty sku", order: order(inventory.Item{SKU: "", Qty: 1}), wantFault: fault.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inventory.Reserve(tt.order, tt.stock)
			if tt.wantFault != "" {
				if err == nil || fault.Code(err) != tt.wantFault {
					t.Fatalf("Reserve() error = %v, want fault %s", err, tt.wantFault)
				}
				return
			}
			if err != nil {
				t.Fatalf("Reserve() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Reserve() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// failed is the decision for an order of items whose SKUs short are missing.
func failed(items []inventory.Item, short ...string) inventory.Change {
	return inventory.Change{
		Outcome:     inventory.OutcomeFailed,
		Reservation: inventory.Reservation{OrderID: "o1", Status: inventory.StatusFailed, Items: items, Reason: inventory.ReasonOutOfStock},
		Events: []messaging.Event{{Type: inventory.EventStockReservationFailed, Data: inventory.StockReservationFailedData{
			OrderID: "o1", Reason: inventory.ReasonOutOfStock, SKUs: short,
		}}},
	}
}

func TestReleaseAndCommit(t *testing.T) {
	items := []inventory.Item{{SKU: "A", Qty: 1, UnitPrice: 100}, {SKU: "B", Qty: 2, UnitPrice: 50}, {SKU: "A", Qty: 1, UnitPrice: 100}}
	held := inventory.Reservation{OrderID: "o1", Status: inventory.StatusReserved, Items: items}
	stock := stockOf(inventory.Stock{SKU: "A", Available: 1, Reserved: 3, Sold: 4}, inventory.Stock{SKU: "B", Available: 0, Reserved: 2})
	in := func(s inventory.Status) inventory.Reservation {
		r := held
		r.Status = s
		return r
	}
	release := func(r inventory.Reservation, st map[string]inventory.Stock) (inventory.Change, error) {
		return inventory.Release(r, st, "PAYMENT_FAILED")
	}
	tests := []struct {
		name      string
		decide    func(inventory.Reservation, map[string]inventory.Stock) (inventory.Change, error)
		r         inventory.Reservation
		stock     map[string]inventory.Stock
		want      inventory.Change
		wantFault string
	}{
		{
			name:   "release a held reservation",
			decide: release,
			r:      held,
			stock:  stock,
			want: inventory.Change{
				Outcome:     inventory.OutcomeReleased,
				Reservation: inventory.Reservation{OrderID: "o1", Status: inventory.StatusReleased, Items: items, Reason: "PAYMENT_FAILED"},
				Stock:       []inventory.Stock{{SKU: "A", Available: 3, Reserved: 1, Sold: 4}, {SKU: "B", Available: 2, Reserved: 0}},
				Events:      []messaging.Event{{Type: inventory.EventStockReleased, Data: inventory.StockReleasedData{OrderID: "o1", Items: items}}},
				StockEvents: []inventory.StockEvent{{SKU: "B", Event: messaging.Event{Type: inventory.EventStockReplenished, Data: inventory.StockReplenishedData{SKU: "B", Available: 2}}}},
			},
		},
		{
			name:   "commit a held reservation",
			decide: inventory.Commit,
			r:      held,
			stock:  stock,
			want: inventory.Change{
				Outcome:     inventory.OutcomeCommitted,
				Reservation: inventory.Reservation{OrderID: "o1", Status: inventory.StatusCommitted, Items: items},
				Stock:       []inventory.Stock{{SKU: "A", Available: 1, Reserved: 1, Sold: 6}, {SKU: "B", Available: 0, Reserved: 0, Sold: 2}},
				Events:      []messaging.Event{{Type: inventory.EventStockCommitted, Data: inventory.StockCommittedData{OrderID: "o1", Items: items}}},
			},
		},
		{name: "release after release is ignored", decide: release, r: in(inventory.StatusReleased), want: ignored(in(inventory.StatusReleased))},
		{name: "release after commit is ignored", decide: release, r: in(inventory.StatusCommitted), want: ignored(in(inventory.StatusCommitted))},
		{name: "release after failure is ignored", decide: release, r: in(inventory.StatusFailed), want: ignored(in(inventory.StatusFailed))},
		{name: "commit after commit is ignored", decide: inventory.Commit, r: in(inventory.StatusCommitted), want: ignored(in(inventory.StatusCommitted))},
		{name: "commit after release is ignored", decide: inventory.Commit, r: in(inventory.StatusReleased), want: ignored(in(inventory.StatusReleased))},
		{name: "commit after failure is ignored", decide: inventory.Commit, r: in(inventory.StatusFailed), want: ignored(in(inventory.StatusFailed))},
		{
			name:      "release with too little reserved is a broken invariant",
			decide:    release,
			r:         held,
			stock:     stockOf(inventory.Stock{SKU: "A", Reserved: 1}, inventory.Stock{SKU: "B", Reserved: 2}),
			wantFault: fault.Internal,
		},
		{
			name:      "commit with a stock row missing is a broken invariant",
			decide:    inventory.Commit,
			r:         held,
			stock:     stockOf(inventory.Stock{SKU: "A", Reserved: 2}),
			wantFault: fault.Internal,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.decide(tt.r, tt.stock)
			if tt.wantFault != "" {
				if _, ok := err.(*fault.Error); !ok || fault.Code(err) != tt.wantFault {
					t.Fatalf("error = %v, want fault %s", err, tt.wantFault)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func ignored(r inventory.Reservation) inventory.Change {
	return inventory.Change{Outcome: inventory.OutcomeIgnored, Reservation: r}
}

func TestCancelUnseen(t *testing.T) {
	items := []inventory.Item{{SKU: "A", Qty: 1}}
	got := inventory.CancelUnseen("o1", items, "TIMEOUT")
	want := inventory.Change{
		Outcome:     inventory.OutcomeIgnored,
		Reservation: inventory.Reservation{OrderID: "o1", Status: inventory.StatusReleased, Items: items, Reason: "TIMEOUT"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CancelUnseen() = %+v, want %+v", got, want)
	}
}

func TestStockSetAvailable(t *testing.T) {
	tests := []struct {
		name      string
		stock     inventory.Stock
		n         int64
		want      inventory.Stock
		wantFault string
	}{
		{name: "new sku", stock: inventory.Stock{SKU: "A100"}, n: 100, want: inventory.Stock{SKU: "A100", Available: 100}},
		{
			name:  "reserved and sold stay",
			stock: inventory.Stock{SKU: "A100", Available: 3, Reserved: 2, Sold: 5},
			n:     0,
			want:  inventory.Stock{SKU: "A100", Available: 0, Reserved: 2, Sold: 5},
		},
		{name: "negative", stock: inventory.Stock{SKU: "A100"}, n: -1, wantFault: fault.Invalid},
		{name: "bad sku", stock: inventory.Stock{SKU: "A 100"}, n: 1, wantFault: fault.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.stock.SetAvailable(tt.n)
			if tt.wantFault != "" {
				if fault.Code(err) != tt.wantFault || err == nil {
					t.Fatalf("SetAvailable() error = %v, want fault %s", err, tt.wantFault)
				}
				return
			}
			if err != nil {
				t.Fatalf("SetAvailable() error = %v", err)
			}
			if got != tt.want {
				t.Errorf("SetAvailable() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestValidateSKU(t *testing.T) {
	tests := []struct {
		sku     string
		wantErr bool
	}{
		{sku: "A100"},
		{sku: "sku-1_b.2"},
		{sku: strings.Repeat("x", 64)},
		{sku: "", wantErr: true},
		{sku: strings.Repeat("x", 65), wantErr: true},
		{sku: "A 100", wantErr: true},
		{sku: "A/100", wantErr: true},
		{sku: "Ä100", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.sku, func(t *testing.T) {
			err := inventory.ValidateSKU(tt.sku)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ValidateSKU(%q) = %v, wantErr %v", tt.sku, err, tt.wantErr)
			}
			if err != nil && fault.Code(err) != fault.Invalid {
				t.Errorf("ValidateSKU(%q) code = %s, want %s", tt.sku, fault.Code(err), fault.Invalid)
			}
		})
	}
}

func TestTransitionsOncePerCrossing(t *testing.T) {
	before := map[string]inventory.Stock{
		"UP": {SKU: "UP", Available: 2}, "ZERO": {SKU: "ZERO"}, "DOWN": {SKU: "DOWN", Available: 1}, "BACK": {SKU: "BACK"},
	}
	after := []inventory.Stock{
		{SKU: "UP", Available: 1}, {SKU: "ZERO", Sold: 1}, {SKU: "DOWN", Reserved: 1}, {SKU: "BACK", Available: 4}, {SKU: "NEW0"}, {SKU: "NEW5", Available: 5},
	}
	var got []string
	for _, e := range inventory.Transitions(before, after) {
		got = append(got, e.SKU+":"+e.Event.Type)
	}
	want := []string{"DOWN:StockDepleted", "BACK:StockReplenished", "NEW0:StockDepleted"}
	if !slices.Equal(got, want) {
		t.Errorf("Transitions = %v, want %v", got, want)
	}
}

package invariant

import (
	"slices"
	"testing"
)

func TestExpected(t *testing.T) {
	reserved := orderEvents{"StockReserved": {"e1": 7}}
	tests := []struct {
		name string
		view OrderView
		evs  orderEvents
		want []string
	}{
		{name: "completed", view: OrderView{Status: "COMPLETED"},
			want: []string{"OrderCreated", "StockReserved", "PaymentAuthorized", "OrderCompleted", "StockCommitted"}},
		{name: "out of stock", view: OrderView{Status: "CANCELED", Reason: "OUT_OF_STOCK"},
			want: []string{"OrderCreated", "StockReservationFailed", "OrderCanceled"}},
		{name: "payment failed", view: OrderView{Status: "CANCELED", Reason: "PAYMENT_FAILED"},
			want: []string{"OrderCreated", "StockReserved", "PaymentFailed", "OrderCanceled", "StockReleased"}},
		{name: "timeout after a reservation", view: OrderView{Status: "CANCELED", Reason: "TIMEOUT"}, evs: reserved,
			want: []string{"OrderCreated", "StockReserved", "OrderCanceled", "StockReleased"}},
		{name: "timeout before a reservation", view: OrderView{Status: "CANCELED", Reason: "TIMEOUT"},
			want: []string{"OrderCreated", "OrderCanceled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := expected(tt.view, tt.evs); !slices.Equal(got, tt.want) {
				t.Errorf("expected() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSnapshotDiff(t *testing.T) {
	base := func() *Snapshot {
		return &Snapshot{
			Orders:  map[string]OrderView{"o1": {OrderID: "o1", Status: "COMPLETED", Amount: 5}},
			Stock:   map[string]StockView{"A": {SKU: "A", Available: 1, Sold: 1}},
			Charges: map[string][]Charge{"o1": {{ChargeID: "c1", OrderID: "o1", Amount: 5, Status: "APPROVED"}}},
		}
	}
	tests := []struct {
		name  string
		edit  func(*Snapshot)
		diffs int
	}{
		{name: "equal", edit: func(*Snapshot) {}, diffs: 0},
		{name: "status changed", edit: func(s *Snapshot) { s.Orders["o1"] = OrderView{OrderID: "o1", Status: "CANCELED", Amount: 5} }, diffs: 1},
		{name: "second charge", edit: func(s *Snapshot) { s.Charges["o1"] = append(s.Charges["o1"], Charge{ChargeID: "c2"}) }, diffs: 1},
		{name: "stock moved", edit: func(s *Snapshot) { s.Stock["A"] = StockView{SKU: "A", Sold: 2} }, diffs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			after := base()
			tt.edit(after)
			if got := base().Diff(after); len(got) != tt.diffs {
				t.Errorf("Diff() = %v, want %d differences", got, tt.diffs)
			}
		})
	}
}

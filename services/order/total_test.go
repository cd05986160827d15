package order

import (
	"math"
	"testing"
)

// TestTotalOverflow: the bounds keep a valid order's total far from the int64 limit, but total
// does not rely on them.
func TestTotalOverflow(t *testing.T) {
	tests := []struct {
		name  string
		items []Item
		want  int64
		fails bool
	}{
		{name: "largest valid order", items: []Item{{Qty: MaxQty, UnitPrice: MaxUnitPrice}}, want: MaxQty * MaxUnitPrice},
		{name: "line overflow", items: []Item{{Qty: 2, UnitPrice: math.MaxInt64/2 + 1}}, fails: true},
		{name: "sum overflow", items: []Item{{Qty: 1, UnitPrice: math.MaxInt64}, {Qty: 1, UnitPrice: 1}}, fails: true},
		{name: "wrapping quantities", items: []Item{{Qty: math.MaxInt64, UnitPrice: 0}, {Qty: math.MaxInt64 - 3, UnitPrice: 0}, {Qty: 1, UnitPrice: 1}}, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := total(tt.items)
			if (err != nil) != tt.fails || !tt.fails && got != tt.want {
				t.Fatalf("total = %d, %v; want %d (fails %v)", got, err, tt.want, tt.fails)
			}
		})
	}
}

package invariant

import (
	"slices"
	"testing"

	"outboxsaga.dev/tools/load"
)

// TestCheckCharges: invariant 3 and invariant 9's money half. A COMPLETED order must have
// exactly one APPROVED charge of exactly its amount and currency: the attack (an
// APPROVED charge of 1 under the order's key, or the charge voided after completion) breaks 9.
func TestCheckCharges(t *testing.T) {
	completed := OrderView{OrderID: "o1", Status: "COMPLETED", Amount: 30000, Currency: "KRW"}
	canceled := OrderView{OrderID: "o1", Status: "CANCELED", Reason: "PAYMENT_FAILED", Amount: 30000, Currency: "KRW"}
	charge := func(amount int64, currency, status string) Charge {
		return Charge{ChargeID: "c1", OrderID: "o1", Amount: amount, Currency: currency, Status: status}
	}
	tests := []struct {
		name    string
		view    OrderView
		charges []Charge
		want    []int // the invariants violated, in order
	}{
		{name: "completed, paid exactly", view: completed, charges: []Charge{charge(30000, "KRW", "APPROVED")}},
		{name: "completed on a charge of 1", view: completed, charges: []Charge{charge(1, "KRW", "APPROVED")}, want: []int{3, 9}},
		{name: "completed in another currency", view: completed, charges: []Charge{charge(30000, "USD", "APPROVED")}, want: []int{9}},
		{name: "completed, charge voided", view: completed, charges: []Charge{charge(30000, "KRW", "VOIDED")}, want: []int{3, 9}},
		{name: "completed without a charge", view: completed, want: []int{3, 9}},
		{name: "canceled, charge voided", view: canceled, charges: []Charge{charge(1, "KRW", "VOIDED")}},
		{name: "canceled, charge approved", view: canceled, charges: []Charge{charge(1, "KRW", "APPROVED")}, want: []int{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			add := func(n int, _, _ string, _ ...any) { got = append(got, n) }
			r := &Result{Checked: map[int]int{}}
			(&Checker{}).checkCharges(load.Order{ID: "o1", Amount: 30000}, tt.view, tt.charges, r, add)
			if !slices.Equal(got, tt.want) {
				t.Errorf("violations = %v, want %v", got, tt.want)
			}
			if tt.view.Status == "COMPLETED" && r.Checked[9] != 1 {
				t.Errorf("invariant 9 checked %d times, want 1", r.Checked[9])
			}
		})
	}
}

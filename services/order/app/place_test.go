package app_test

import (
	"context"
	"testing"

	"outboxsaga.dev/messaging/customer"
	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/order"
	"outboxsaga.dev/order/app"
)

// TestPlaceOrderRefusesBeforeTheDatabase: a draft out of bounds (first) and a draft of another
// customer than the caller are refused before any transaction; the application here has no
// database, so one that got that far would panic.
func TestPlaceOrderRefusesBeforeTheDatabase(t *testing.T) {
	valid := order.Draft{CustomerID: "U1", Currency: "KRW", PaymentToken: "tok_ok", Lines: []order.Line{{SKU: "A100", Qty: 1}}}
	invalid := valid
	invalid.Lines = nil
	u1, u2 := customer.Caller{Customer: "U1"}, customer.Caller{Customer: "U2"}
	tests := []struct {
		name   string
		caller customer.Caller
		draft  order.Draft
		want   string
	}{
		{"out of bounds", u1, invalid, fault.Invalid},
		{"another customer's", u2, valid, fault.Forbidden},
		{"an operator places none", customer.Caller{Operator: true}, valid, fault.Forbidden},
		{"out of bounds and another customer's: the bounds first", u2, invalid, fault.Invalid},
	}
	a := app.New(app.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.PlaceOrder(context.Background(), app.PlaceOrder{Caller: tt.caller, Draft: tt.draft})
			if fault.Code(err) != tt.want {
				t.Fatalf("PlaceOrder = %v, want %s", err, tt.want)
			}
		})
	}
}

package gatewaysim_test

import (
	"strings"
	"testing"

	"outboxsaga.dev/gatewaysim"
	"outboxsaga.dev/messaging/fault"
)

func TestChargeRequestValidate(t *testing.T) {
	valid := gatewaysim.ChargeRequest{OrderID: "o1", IdempotencyKey: "k1", Amount: 100, Currency: "KRW", Token: "tok_ok"}
	tests := []struct {
		name      string
		edit      func(*gatewaysim.ChargeRequest)
		wantField string // "" when valid
	}{
		{name: "valid", edit: func(*gatewaysim.ChargeRequest) {}},
		{name: "no order", edit: func(r *gatewaysim.ChargeRequest) { r.OrderID = "" }, wantField: "orderId"},
		{name: "no key", edit: func(r *gatewaysim.ChargeRequest) { r.IdempotencyKey = "" }, wantField: "idempotencyKey"},
		{name: "zero amount", edit: func(r *gatewaysim.ChargeRequest) { r.Amount = 0 }, wantField: "amount"},
		{name: "long currency", edit: func(r *gatewaysim.ChargeRequest) { r.Currency = "KRWX" }, wantField: "currency"},
		{name: "lower currency", edit: func(r *gatewaysim.ChargeRequest) { r.Currency = "usd" }, wantField: "currency"},
		{name: "no token", edit: func(r *gatewaysim.ChargeRequest) { r.Token = "" }, wantField: "token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := valid
			tt.edit(&req)

			err := req.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if fault.Code(err) != fault.Invalid || !strings.HasPrefix(fault.Message(err), tt.wantField+": ") {
				t.Errorf("Validate() = %v, want an invalid error on %s", err, tt.wantField)
			}
		})
	}
}

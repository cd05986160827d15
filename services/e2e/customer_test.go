package e2e

import (
	"net/http"
	"testing"
	"time"
)

// TestCustomersSeeOnlyTheirOrders (issue 19, point 4): every customer read takes a customer token,
// and another customer finds nothing where U1's order is: GET /orders/{id}, its timeline and its
// status stream on the order service, its payment and its delivery answer U2 404, as they answer
// for an order that does not exist; without a token, 401. A body customerId that is not the
// token's is refused (403). The operator may read it all.
func TestCustomersSeeOnlyTheirOrders(t *testing.T) {
	t.Parallel()
	u := stackURLs()
	sku := pricedSKU(t, u, 1, 100)
	var created struct{ OrderID string }
	req := orderRequest{CustomerID: "U1", Currency: "KRW", PaymentToken: "tok_ok", Items: []item{{SKU: sku, Qty: 1, UnitPrice: 100}}}
	if code, raw := call(t, http.MethodPost, u.order+"/orders", req, nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("POST /orders without a token: %d %s, want 401", code, raw)
	}
	if code, raw := call(t, http.MethodPost, u.order+"/orders", req, customerHeader(t, "U2"), nil); code != http.StatusForbidden {
		t.Fatalf("POST /orders for U1 with U2's token: %d %s, want 403", code, raw)
	}
	if code, raw := call(t, http.MethodPost, u.order+"/orders", req, customerHeader(t, "U1"), &created); code != http.StatusAccepted {
		t.Fatalf("POST /orders: %d %s", code, raw)
	}
	id := created.OrderID
	// The payment and the delivery exist once the order has completed and shipping scheduled it.
	if o := waitTerminal(t, u, id, sagaTimeout); o.Status != "COMPLETED" {
		t.Fatalf("order ended %s/%s, want COMPLETED", o.Status, o.Reason)
	}
	u1, u2, operator := customerHeader(t, "U1"), customerHeader(t, "U2"), adminHeader()
	reads := map[string]string{
		"order":    u.order + "/orders/" + id,
		"timeline": u.order + "/orders/" + id + "/events",
		"stream":   u.order + "/orders/" + id + "/stream", // a COMPLETED order's stream ends after one event
		"payment":  u.payment + "/payments/" + id,
		"delivery": u.shipping + "/deliveries/" + id,
	}
	for name, url := range reads {
		t.Run(name, func(t *testing.T) {
			// The delivery is scheduled, and the payment service hears whose order it is (OrderCreated),
			// shortly after the order completes.
			waitFor(t, 30*time.Second, func() bool { code, _ := call(t, http.MethodGet, url, nil, u1, nil); return code == http.StatusOK })
			tests := []struct {
				who     string
				headers map[string]string
				want    int
			}{
				{who: "U1, the order's customer", headers: u1, want: http.StatusOK},
				{who: "U2, another customer", headers: u2, want: http.StatusNotFound},
				{who: "nobody (no token)", headers: nil, want: http.StatusUnauthorized},
				{who: "a forged token", headers: map[string]string{"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJVMSJ9."}, want: http.StatusUnauthorized},
				{who: "the operator", headers: operator, want: http.StatusOK},
			}
			for _, tt := range tests {
				if code, raw := call(t, http.MethodGet, url, nil, tt.headers, nil); code != tt.want {
					t.Errorf("GET %s as %s: %d %.200s, want %d", url, tt.who, code, raw, tt.want)
				}
			}
		})
	}
}

// waitFor polls ok until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !ok(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s", timeout)
		}
	}
}

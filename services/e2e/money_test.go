package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"outboxsaga.dev/messaging/eventually"
)

// The gateway (simulator) stands for a real PSP: every /charges call must carry the merchant's
// secret, and a known idempotency key reused for other terms is refused (409
// idempotency_conflict), never answered with the existing charge. These tests play the issue's
// attack (issue 19, point 3) over HTTP: a charge of 1 under an order's key `pay:<orderId>`, and a
// void of that key, first without the secret, then as an insider who holds it.

// orderAmount is what the tests' orders cost: one unit at 30,000 KRW.
const orderAmount = 30000

// merchantHeader is the gateway's merchant login: GATEWAY_MERCHANT_SECRET (make test exports the
// stack's, as for the tools).
func merchantHeader(tb testing.TB) map[string]string {
	tb.Helper()
	secret := os.Getenv("GATEWAY_MERCHANT_SECRET")
	if secret == "" {
		tb.Fatal("GATEWAY_MERCHANT_SECRET is not set: the gateway lists and takes charges only from the merchant (run through make test, or source scripts/lib.sh)")
	}
	return map[string]string{"Authorization": "Bearer " + secret}
}

// placeOneUnit places an order of one unit of a new SKU at orderAmount, paid with token, and
// returns its id.
func placeOneUnit(tb testing.TB, u urls, token string) string {
	tb.Helper()
	return placeOrder(tb, u, token, item{SKU: newSKU(tb, u, 1), Qty: 1, UnitPrice: orderAmount})
}

// forgedCharge is the attack's charge: amount 1 under the order's own key.
func forgedCharge(orderID string) map[string]any {
	return map[string]any{"orderId": orderID, "idempotencyKey": "pay:" + orderID, "amount": 1, "currency": "KRW", "token": "tok_ok"}
}

// gatewayError is a gateway error answer.
type gatewayError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// expectRefused sends a request to the gateway and fails tb unless it answers wantStatus with
// the error code wantCode.
func expectRefused(tb testing.TB, method, url string, body any, headers map[string]string, wantStatus int, wantCode string) {
	tb.Helper()
	var e gatewayError
	code, raw := call(tb, method, url, body, headers, nil)
	if code == wantStatus {
		_ = json.Unmarshal(raw, &e) // a body that is not JSON leaves Code empty: a failure below
	}
	if code != wantStatus || e.Code != wantCode {
		tb.Errorf("%s %s: %d %s, want %d {code: %s}", method, url, code, raw, wantStatus, wantCode)
	}
}

// paidExactly fails tb unless the order's ledger holds exactly one charge, APPROVED, of exactly
// the order's amount and currency (invariant 9's money half).
func paidExactly(tb testing.TB, u urls, o order) {
	tb.Helper()
	cs := charges(tb, u, o.OrderID)
	if len(cs) != 1 || cs[0].Status != "APPROVED" || cs[0].Amount != o.Amount || cs[0].Currency != o.Currency ||
		cs[0].IdempotencyKey != "pay:"+o.OrderID {
		tb.Errorf("COMPLETED order of %d %s: ledger %+v, want exactly one APPROVED charge of that amount and currency", o.Amount, o.Currency, cs)
	}
}

// noMoneyHeld fails tb if the order's ledger holds an APPROVED charge.
func noMoneyHeld(tb testing.TB, u urls, orderID string) {
	tb.Helper()
	for _, c := range charges(tb, u, orderID) {
		if c.Status == "APPROVED" {
			tb.Errorf("order %s holds an APPROVED charge: %+v", orderID, c)
		}
	}
}

// paymentOf reads the payment service's view of an order, as the operator.
func paymentOf(tb testing.TB, u urls, orderID string) payment {
	tb.Helper()
	return getAs[payment](tb, u.payment+"/payments/"+orderID, adminHeader())
}

// TestGatewayWantsTheMerchantSecret: while an order waits on its charge (tok_timeout: the gateway
// holds it), a charge of 1 under its key, a void of the key and the ledger's listing are all
// refused without the merchant secret (401); the order never completes on a charge it did not
// make.
func TestGatewayWantsTheMerchantSecret(t *testing.T) {
	t.Parallel()
	u := stackURLs()
	id := placeOneUnit(t, u, "tok_timeout")
	eventually.Holds(t, 30*time.Second, func() string {
		var p payment
		if code, raw := call(t, http.MethodGet, u.payment+"/payments/"+id, nil, adminHeader(), &p); code != http.StatusOK || p.Status != "AUTHORIZING" {
			return fmt.Sprintf("payment %d %s, want AUTHORIZING (the charge in flight)", code, raw)
		}
		return ""
	})

	logins := []struct {
		name    string
		headers map[string]string
	}{
		{name: "no secret", headers: nil},
		{name: "a wrong secret", headers: map[string]string{"Authorization": "Bearer not-the-merchant-secret"}},
	}
	for _, l := range logins {
		t.Run(l.name, func(t *testing.T) {
			expectRefused(t, http.MethodPost, u.gateway+"/charges", forgedCharge(id), l.headers, http.StatusUnauthorized, "unauthorized")
			expectRefused(t, http.MethodPost, u.gateway+"/charges/void", map[string]any{"orderId": id, "idempotencyKey": "pay:" + id},
				l.headers, http.StatusUnauthorized, "unauthorized")
			expectRefused(t, http.MethodGet, u.gateway+"/charges?orderId="+id, nil, l.headers, http.StatusUnauthorized, "unauthorized")
			expectRefused(t, http.MethodGet, u.gateway+"/charges", nil, l.headers, http.StatusUnauthorized, "unauthorized")
		})
	}

	o := waitTerminal(t, u, id, 90*time.Second)
	if o.Status == "COMPLETED" {
		t.Fatalf("a tok_timeout order COMPLETED: %+v, ledger %+v", o, charges(t, u, id))
	}
	noMoneyHeld(t, u, id)
}

// TestConflictingChargeIsRefused: an insider who holds the merchant secret reuses a completed
// order's key for a charge of 1, of another currency, or of another order: the gateway refuses
// each (409 idempotency_conflict) and the order's charge stays what it was. A void without the
// secret is refused (401), one of another order's key as well (409): the delivered order keeps
// its APPROVED charge.
func TestConflictingChargeIsRefused(t *testing.T) {
	t.Parallel()
	u := stackURLs()
	id := placeOneUnit(t, u, "tok_ok")
	o := waitTerminal(t, u, id, 60*time.Second)
	if o.Status != "COMPLETED" {
		t.Fatalf("order ended %s/%s, want COMPLETED", o.Status, o.Reason)
	}
	paidExactly(t, u, o)

	conflicts := []struct {
		name string
		edit func(map[string]any)
	}{
		{name: "amount 1", edit: func(map[string]any) {}},
		{name: "its amount in another currency", edit: func(b map[string]any) { b["amount"], b["currency"] = orderAmount, "USD" }},
		{name: "its terms for another order", edit: func(b map[string]any) {
			b["amount"], b["orderId"] = orderAmount, "00000000-0000-4000-8000-000000000019"
		}},
	}
	for _, c := range conflicts {
		t.Run(c.name, func(t *testing.T) {
			body := forgedCharge(id)
			c.edit(body)
			expectRefused(t, http.MethodPost, u.gateway+"/charges", body, merchantHeader(t), http.StatusConflict, "idempotency_conflict")
		})
	}
	expectRefused(t, http.MethodPost, u.gateway+"/charges/void", map[string]any{"orderId": id, "idempotencyKey": "pay:" + id},
		nil, http.StatusUnauthorized, "unauthorized")
	expectRefused(t, http.MethodPost, u.gateway+"/charges/void", map[string]any{"orderId": "00000000-0000-4000-8000-000000000019", "idempotencyKey": "pay:" + id},
		merchantHeader(t), http.StatusConflict, "idempotency_conflict")

	if again := getOrder(t, u, id); again.Status != "COMPLETED" {
		t.Errorf("the order moved to %s", again.Status)
	}
	paidExactly(t, u, o)
}

// TestRacedChargeNeverCompletesTheOrder: an insider with the merchant secret races the payment
// service with a charge of 1 under a fresh order's key. Whoever comes first, the order never ends
// COMPLETED on a wrong charge: either the payment service was first (the forged charge gets 409,
// the order completes on exactly its amount), or the forged charge was (the payment service's
// charge gets 409, a mismatch: the payment FAILS with GATEWAY_MISMATCH, the forged charge is
// voided, the order is CANCELED holding no money).
func TestRacedChargeNeverCompletesTheOrder(t *testing.T) {
	t.Parallel()
	u := stackURLs()
	id := placeOneUnit(t, u, "tok_ok")
	code, raw := call(t, http.MethodPost, u.gateway+"/charges", forgedCharge(id), merchantHeader(t), nil)

	o := waitTerminal(t, u, id, 60*time.Second)
	switch {
	case code == http.StatusConflict && o.Status == "COMPLETED":
		t.Log("the payment service charged first; the forged charge was refused")
		paidExactly(t, u, o)
	case code == http.StatusCreated && o.Status == "CANCELED":
		t.Log("the forged charge came first; the payment service refused the mismatch")
		eventually.Holds(t, 15*time.Second, func() string {
			if p := paymentOf(t, u, id); p.Status != "FAILED" || p.Reason != "GATEWAY_MISMATCH" {
				return fmt.Sprintf("payment %+v, want FAILED GATEWAY_MISMATCH", p)
			}
			return ""
		})
		noMoneyHeld(t, u, id)
	default:
		t.Fatalf("forged charge %d %s; order %s/%s; ledger %+v", code, raw, o.Status, o.Reason, charges(t, u, id))
	}
}

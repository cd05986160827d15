package gatewayhttp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"outboxsaga.dev/gatewaysim"
	simhttp "outboxsaga.dev/gatewaysim/httpapi"
	"outboxsaga.dev/payment"
	"outboxsaga.dev/payment/gatewayhttp"
)

// sim is the gateway simulator served in-process, counting the requests it gets.
type sim struct {
	ledger *gatewaysim.Ledger
	url    string
	calls  atomic.Int64
}

// secret is the merchant secret of the tests' simulators; newClient sends it.
const secret = "merchant-secret-of-the-tests"

func startSim(t *testing.T, cfg gatewaysim.Config) *sim {
	t.Helper()
	s := &sim{ledger: gatewaysim.NewLedger(cfg)}
	h, err := simhttp.NewHandler(s.ledger, secret, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func newClient(t *testing.T, url string, timeout time.Duration, attempts int) (*gatewayhttp.Client, *prometheus.Registry) {
	t.Helper()
	return newClientWith(t, gatewayhttp.Config{URL: url, Timeout: timeout, Attempts: attempts, Secret: secret})
}

func newClientWith(t *testing.T, cfg gatewayhttp.Config) (*gatewayhttp.Client, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Backoff = 5 * time.Millisecond
	c, err := gatewayhttp.New(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	return c, reg
}

func request(orderID, token string) payment.ChargeRequest {
	return payment.ChargeRequest{OrderID: orderID, IdempotencyKey: payment.IdempotencyKey(orderID), Amount: 39000, Currency: "KRW", Token: token}
}

func TestCharge(t *testing.T) {
	tests := []struct {
		name, token string
		amount      int64
		attempts    int
		timeout     time.Duration
		wantStatus  payment.ChargeStatus
		wantDecline string
		wantErr     error
		wantCalls   int64
		wantLedger  gatewaysim.Status // "" = no charge recorded
	}{
		{name: "ok", token: "tok_ok", wantStatus: payment.ChargeStatusApproved, wantCalls: 1, wantLedger: gatewaysim.StatusApproved},
		{name: "declined", token: "tok_declined", wantStatus: payment.ChargeStatusDeclined, wantDecline: "CARD_DECLINED", wantCalls: 1, wantLedger: gatewaysim.StatusDeclined},
		{name: "unknown token", token: "tok_nope", wantStatus: payment.ChargeStatusDeclined, wantDecline: "INVALID_TOKEN", wantCalls: 1, wantLedger: gatewaysim.StatusDeclined},
		{name: "flaky approves on the third attempt", token: "tok_flaky", wantStatus: payment.ChargeStatusApproved, wantCalls: 3, wantLedger: gatewaysim.StatusApproved},
		{name: "flaky with two attempts stays unavailable", token: "tok_flaky", attempts: 2, wantErr: payment.ErrGatewayUnavailable, wantCalls: 2},
		{name: "timeout with one attempt", token: "tok_timeout", attempts: 1, timeout: 50 * time.Millisecond, wantErr: payment.ErrGatewayTimeout, wantCalls: 1},
		// The simulator approves once the caller gives up; the retry with the same key reads
		// that approval instead of charging again.
		{name: "timeout, then the retry finds the late approval", token: "tok_timeout", timeout: 50 * time.Millisecond,
			wantStatus: payment.ChargeStatusApproved, wantLedger: gatewaysim.StatusApproved},
		{name: "invalid request is rejected without retries", token: "tok_ok", amount: -1, wantErr: payment.ErrGatewayRejected, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSim(t, gatewaysim.Config{TimeoutDelay: 200 * time.Millisecond, FlakyFailures: 2})
			c, _ := newClient(t, s.url, cmpOr(tt.timeout, time.Second), cmpOr(tt.attempts, 4))
			req := request("o1", tt.token)
			if tt.amount != 0 {
				req.Amount = tt.amount
			}
			res, err := c.Charge(context.Background(), req)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Charge error = %v, want %v", err, tt.wantErr)
			}
			if res.Status != tt.wantStatus || res.DeclineCode != tt.wantDecline {
				t.Fatalf("Charge = %+v, want status %q decline %q", res, tt.wantStatus, tt.wantDecline)
			}
			if tt.wantCalls != 0 && s.calls.Load() != tt.wantCalls {
				t.Fatalf("%d calls to the gateway, want %d", s.calls.Load(), tt.wantCalls)
			}
			if tt.wantLedger == "" {
				// A timed-out charge lands late at the simulator; the others record nothing.
				if n := len(s.ledger.List("o1")); n != 0 && tt.token != "tok_timeout" {
					t.Fatalf("ledger has %d charges, want none", n)
				}
				return
			}
			ledger := s.ledger.List("o1")
			if len(ledger) != 1 || ledger[0].Status != tt.wantLedger || ledger[0].ID != res.ChargeID ||
				ledger[0].IdempotencyKey != "pay:o1" {
				t.Fatalf("ledger = %+v, want one %s charge %s", ledger, tt.wantLedger, res.ChargeID)
			}
		})
	}
}

func cmpOr[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

func TestChargeRepeatedKeyReturnsTheSameCharge(t *testing.T) {
	s := startSim(t, gatewaysim.Config{})
	c, _ := newClient(t, s.url, time.Second, 4)
	first, err := c.Charge(context.Background(), request("o1", "tok_declined"))
	if err != nil {
		t.Fatal(err)
	}
	// A repeat is answered 200 with the existing charge, declined here: the status decides.
	again, err := c.Charge(context.Background(), request("o1", "tok_ok"))
	if err != nil {
		t.Fatal(err)
	}
	if again != first || again.Status != payment.ChargeStatusDeclined {
		t.Fatalf("repeat = %+v, want %+v", again, first)
	}
	if n := len(s.ledger.List("o1")); n != 1 {
		t.Fatalf("ledger has %d charges, want 1", n)
	}
}

func TestVoid(t *testing.T) {
	s := startSim(t, gatewaysim.Config{})
	c, _ := newClient(t, s.url, time.Second, 4)
	ctx := context.Background()

	charged, err := c.Charge(ctx, request("o1", "tok_ok"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		orderID string
		wantID  string
	}{
		{name: "approved charge", orderID: "o1", wantID: charged.ChargeID},
		{name: "again: unchanged", orderID: "o1", wantID: charged.ChargeID},
		{name: "no charge: placeholder", orderID: "o2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Void(ctx, payment.VoidRequest{OrderID: tt.orderID, IdempotencyKey: payment.IdempotencyKey(tt.orderID), Amount: 39000, Currency: "KRW"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != payment.ChargeStatusVoided || (tt.wantID != "" && res.ChargeID != tt.wantID) {
				t.Fatalf("Void = %+v, want VOIDED %s", res, tt.wantID)
			}
			ledger := s.ledger.List(tt.orderID)
			if len(ledger) != 1 || ledger[0].Status != gatewaysim.StatusVoided {
				t.Fatalf("ledger = %+v, want one VOIDED", ledger)
			}
		})
	}

	// The placeholder blocks a late charge of the key.
	late, err := c.Charge(ctx, request("o2", "tok_ok"))
	if err != nil || late.Status != payment.ChargeStatusVoided {
		t.Fatalf("charge after void = %+v, %v; want the VOIDED placeholder", late, err)
	}
}

func TestUnreachableGateway(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // connection refused from now on

	c, reg := newClient(t, url, time.Second, 3)
	_, err := c.Charge(context.Background(), request("o1", "tok_ok"))
	if !errors.Is(err, payment.ErrGatewayUnavailable) {
		t.Fatalf("Charge = %v, want ErrGatewayUnavailable", err)
	}
	if _, err := c.Void(context.Background(), payment.VoidRequest{OrderID: "o1", IdempotencyKey: "pay:o1"}); !errors.Is(err, payment.ErrGatewayUnavailable) {
		t.Fatalf("Void = %v, want ErrGatewayUnavailable", err)
	}
	wantCalls(t, reg, `{op="charge",outcome="unavailable"} 3`, `{op="void",outcome="unavailable"} 3`)
}

func TestServerErrors(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		wantErr    error
	}{
		{name: "500", status: 500, wantErr: payment.ErrGatewayUnavailable},
		{name: "504", status: 504, wantErr: payment.ErrGatewayTimeout},
		{name: "400", status: 400, body: `{"error":"amount: must be positive","code":"invalid"}`, wantErr: payment.ErrGatewayRejected},
		{name: "200 without a charge", status: 200, body: `{}`, wantErr: payment.ErrGatewayUnavailable},
		{name: "200 with an unknown status", status: 200, body: `{"chargeId":"ch_1","status":"PENDING"}`, wantErr: payment.ErrGatewayUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c, _ := newClient(t, srv.URL, time.Second, 2)
			if _, err := c.Charge(context.Background(), request("o1", "tok_ok")); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Charge = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestCallerCancelIsNotTransient(t *testing.T) {
	s := startSim(t, gatewaysim.Config{TimeoutDelay: 5 * time.Second})
	c, _ := newClient(t, s.url, 2*time.Second, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Charge(ctx, request("o1", "tok_timeout"))
	if !errors.Is(err, context.DeadlineExceeded) || payment.IsTransient(err) {
		t.Fatalf("Charge = %v, want the caller's deadline, not a transient gateway error", err)
	}
	if n := s.calls.Load(); n != 1 {
		t.Fatalf("%d calls, want 1 (no retry once the caller is gone)", n)
	}
}

// answer is one canned gateway answer.
type answer struct {
	status int
	body   string
}

// fakeGateway answers each call with the next of answers (the last one repeats), as a gateway
// that lies or errs would, and counts the calls and the ones that carried the secret.
func fakeGateway(t *testing.T, answers ...answer) (url string, calls, authed *atomic.Int64) {
	t.Helper()
	calls, authed = new(atomic.Int64), new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1))
		if r.Header.Get("Authorization") == "Bearer "+secret {
			authed.Add(1)
		}
		a := answers[min(n, len(answers))-1]
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, calls, authed
}

// reply is a gateway charge answer of o1's key, as the simulator writes it.
func reply(orderID, key string, amount int64, currency, status string) string {
	return fmt.Sprintf(`{"chargeId":"ch_1","orderId":%q,"idempotencyKey":%q,"amount":%d,"currency":%q,"status":%q}`,
		orderID, key, amount, currency, status)
}

// TestChargeChecksTheAnswer: every answer to a charge, first call, retry or replay, is checked
// against the request; one about another order, key, amount or currency, or with a status its
// HTTP status cannot carry, or a 409 idempotency_conflict, is ErrGatewayMismatch, never a
// result to act on, and is not retried.
func TestChargeChecksTheAnswer(t *testing.T) {
	const key = "pay:o1"
	unavailable := answer{status: 503, body: `{"error":"down","code":"unavailable"}`}
	tests := []struct {
		name       string
		answers    []answer
		wantErr    error
		wantStatus payment.ChargeStatus
		wantCalls  int64
	}{
		{name: "matching approval", answers: []answer{{201, reply("o1", key, 39000, "KRW", "APPROVED")}}, wantStatus: payment.ChargeStatusApproved, wantCalls: 1},
		{name: "matching replay", answers: []answer{{200, reply("o1", key, 39000, "KRW", "APPROVED")}}, wantStatus: payment.ChargeStatusApproved, wantCalls: 1},
		{name: "replayed placeholder", answers: []answer{{200, reply("o1", key, 0, "", "VOIDED")}}, wantStatus: payment.ChargeStatusVoided, wantCalls: 1},
		{name: "approval of amount 1", answers: []answer{{201, reply("o1", key, 1, "KRW", "APPROVED")}}, wantErr: payment.ErrGatewayMismatch, wantCalls: 1},
		{name: "replay of amount 1", answers: []answer{{200, reply("o1", key, 1, "KRW", "APPROVED")}}, wantErr: payment.ErrGatewayMismatch, wantCalls: 1},
		{name: "retry answered with amount 1", answers: []answer{unavailable, {200, reply("o1", key, 1, "KRW", "APPROVED")}}, wantErr: payment.ErrGatewayMismatch, wantCalls: 2},
		{name: "another currency", answers: []answer{{201, reply("o1", key, 39000, "USD", "APPROVED")}}, wantErr: payment.ErrGatewayMismatch, wantCalls: 1},
		{name: "another order", answers: []answer{{201, reply("o2", key, 39000, "KRW", "APPROVED")}}, wantErr: payment.ErrGatewayMismatch, wantCalls: 1},
		{name: "another key", answers: []answer{{201, reply("o1", "pay:o2", 39000, "KRW", "APPROVED")}}, wantErr: payment.ErrGatewayMismatch, wantCalls: 1},
		{name: "no terms at all", answers: []answer{{201, `{"chargeId":"ch_1","status":"APPROVED"}`}}, wantErr: payment.ErrGatewayMismatch, wantCalls: 1},
		{name: "201 that is not an approval", answers: []answer{{201, reply("o1", key, 39000, "KRW", "VOIDED")}}, wantErr: payment.ErrGatewayMismatch, wantCalls: 1},
		{name: "402 that is an approval", answers: []answer{{402, reply("o1", key, 39000, "KRW", "APPROVED")}}, wantErr: payment.ErrGatewayMismatch, wantCalls: 1},
		{name: "replayed voided charge of another amount", answers: []answer{{200, reply("o1", key, 1, "KRW", "VOIDED")}}, wantErr: payment.ErrGatewayMismatch, wantCalls: 1},
		{name: "idempotency conflict", answers: []answer{{409, `{"error":"idempotency key pay:o1 is already used for another amount (1 KRW)","code":"idempotency_conflict"}`}},
			wantErr: payment.ErrGatewayMismatch, wantCalls: 1},
		{name: "another 409 is a rejection", answers: []answer{{409, `{"error":"no","code":"conflict"}`}}, wantErr: payment.ErrGatewayRejected, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, calls, authed := fakeGateway(t, tt.answers...)
			c, _ := newClient(t, url, time.Second, 4)

			res, err := c.Charge(context.Background(), request("o1", "tok_ok"))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Charge = %+v, %v; want error %v", res, err, tt.wantErr)
			}
			if tt.wantErr == nil && res.Status != tt.wantStatus {
				t.Fatalf("Charge = %+v, want status %s", res, tt.wantStatus)
			}
			if payment.IsTransient(err) {
				t.Fatalf("Charge error %v is transient; a mismatch must not be retried", err)
			}
			if calls.Load() != tt.wantCalls || authed.Load() != calls.Load() {
				t.Fatalf("%d calls (%d with the secret), want %d, all with it", calls.Load(), authed.Load(), tt.wantCalls)
			}
		})
	}
}

// TestVoidChecksTheAnswer: a void's answer must be the order's key with no money held, of the
// order's terms or a placeholder's; unchecked terms when the request has none.
func TestVoidChecksTheAnswer(t *testing.T) {
	const key = "pay:o1"
	withTerms := payment.VoidRequest{OrderID: "o1", IdempotencyKey: key, Amount: 39000, Currency: "KRW"}
	anyTerms := payment.VoidRequest{OrderID: "o1", IdempotencyKey: key}
	tests := []struct {
		name    string
		req     payment.VoidRequest
		answer  answer
		wantErr error
	}{
		{name: "voided", req: withTerms, answer: answer{200, reply("o1", key, 39000, "KRW", "VOIDED")}},
		{name: "placeholder", req: withTerms, answer: answer{200, reply("o1", key, 0, "", "VOIDED")}},
		{name: "declined holds no money", req: withTerms, answer: answer{200, reply("o1", key, 39000, "KRW", "DECLINED")}},
		{name: "still approved", req: withTerms, answer: answer{200, reply("o1", key, 39000, "KRW", "APPROVED")}, wantErr: payment.ErrGatewayMismatch},
		{name: "another amount", req: withTerms, answer: answer{200, reply("o1", key, 1, "KRW", "VOIDED")}, wantErr: payment.ErrGatewayMismatch},
		{name: "another order", req: withTerms, answer: answer{200, reply("o2", key, 39000, "KRW", "VOIDED")}, wantErr: payment.ErrGatewayMismatch},
		{name: "another amount, terms unchecked", req: anyTerms, answer: answer{200, reply("o1", key, 1, "KRW", "VOIDED")}},
		{name: "still approved, terms unchecked", req: anyTerms, answer: answer{200, reply("o1", key, 1, "KRW", "APPROVED")}, wantErr: payment.ErrGatewayMismatch},
		{name: "conflict", req: withTerms, answer: answer{409, `{"error":"for order o2","code":"idempotency_conflict"}`}, wantErr: payment.ErrGatewayMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, calls, _ := fakeGateway(t, tt.answer)
			c, _ := newClient(t, url, time.Second, 4)
			res, err := c.Void(context.Background(), tt.req)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Void = %+v, %v; want error %v", res, err, tt.wantErr)
			}
			if calls.Load() != 1 {
				t.Fatalf("%d calls, want 1", calls.Load())
			}
		})
	}
}

// TestChargeUnderAKeyTakenByAnother: someone holding the merchant secret charged 1 under the
// order's key first; the simulator refuses the order's charge (409) and the client reports a
// mismatch, never the other charge as the order's.
func TestChargeUnderAKeyTakenByAnother(t *testing.T) {
	s := startSim(t, gatewaysim.Config{})
	if _, err := s.ledger.Charge(context.Background(), gatewaysim.ChargeRequest{OrderID: "o1", IdempotencyKey: "pay:o1",
		Amount: 1, Currency: "KRW", Token: "tok_ok"}); err != nil {
		t.Fatal(err)
	}
	c, _ := newClient(t, s.url, time.Second, 4)
	res, err := c.Charge(context.Background(), request("o1", "tok_ok"))
	if !errors.Is(err, payment.ErrGatewayMismatch) {
		t.Fatalf("Charge = %+v, %v; want ErrGatewayMismatch", res, err)
	}
	if ledger := s.ledger.List("o1"); len(ledger) != 1 || ledger[0].Amount != 1 || ledger[0].Status != gatewaysim.StatusApproved {
		t.Fatalf("ledger = %+v, want the other charge untouched", ledger)
	}
}

// TestUnauthorized: without the merchant secret, or with another, the simulator answers 401: the
// client says so (ErrGatewayUnauthorized: not a rejection of the payment, not transient within
// the call) after one call, and nothing is charged.
func TestUnauthorized(t *testing.T) {
	for _, sent := range []string{"", "another-secret"} {
		t.Run("secret "+strconv.Quote(sent), func(t *testing.T) {
			s := startSim(t, gatewaysim.Config{})
			c, reg := newClientWith(t, gatewayhttp.Config{URL: s.url, Timeout: time.Second, Attempts: 4, Secret: sent})
			_, err := c.Charge(context.Background(), request("o1", "tok_ok"))
			if !errors.Is(err, payment.ErrGatewayUnauthorized) || errors.Is(err, payment.ErrGatewayRejected) || payment.IsTransient(err) {
				t.Fatalf("Charge = %v, want ErrGatewayUnauthorized only", err)
			}
			if _, err := c.Void(context.Background(), payment.VoidRequest{OrderID: "o1", IdempotencyKey: "pay:o1"}); !errors.Is(err, payment.ErrGatewayUnauthorized) {
				t.Fatalf("Void = %v, want ErrGatewayUnauthorized", err)
			}
			if s.calls.Load() != 2 || len(s.ledger.List("")) != 0 {
				t.Fatalf("%d calls, ledger %+v; want 2 calls and nothing recorded", s.calls.Load(), s.ledger.List(""))
			}
			wantCalls(t, reg, `{op="charge",outcome="unauthorized"} 1`, `{op="void",outcome="unauthorized"} 1`)
		})
	}
}

// wantCalls fails t unless payment_gateway_calls_total holds exactly the series given as
// `{labels} value`.
func wantCalls(t *testing.T, reg *prometheus.Registry, series ...string) {
	t.Helper()
	want := "# HELP payment_gateway_calls_total Gateway calls (each attempt) by operation and outcome (approved, declined, voided, mismatch, unauthorized, timeout, unavailable, rejected, canceled).\n" +
		"# TYPE payment_gateway_calls_total counter\n"
	for _, s := range series {
		want += "payment_gateway_calls_total" + s + "\n"
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "payment_gateway_calls_total"); err != nil {
		t.Fatal(err)
	}
}

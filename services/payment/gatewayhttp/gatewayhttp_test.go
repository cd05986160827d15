package gatewayhttp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
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

func startSim(t *testing.T, cfg gatewaysim.Config) *sim {
	t.Helper()
	s := &sim{ledger: gatewaysim.NewLedger(cfg)}
	h := simhttp.NewHandler(s.ledger, zerolog.Nop(), prometheus.NewRegistry())
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
	reg := prometheus.NewRegistry()
	c, err := gatewayhttp.New(gatewayhttp.Config{URL: url, Timeout: timeout, Attempts: attempts, Backoff: 5 * time.Millisecond}, reg)
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
		{name: "ok", token: "tok_ok", wantStatus: payment.ChargeApproved, wantCalls: 1, wantLedger: gatewaysim.StatusApproved},
		{name: "declined", token: "tok_declined", wantStatus: payment.ChargeDeclined, wantDecline: "CARD_DECLINED", wantCalls: 1, wantLedger: gatewaysim.StatusDeclined},
		{name: "unknown token", token: "tok_nope", wantStatus: payment.ChargeDeclined, wantDecline: "INVALID_TOKEN", wantCalls: 1, wantLedger: gatewaysim.StatusDeclined},
		{name: "flaky approves on the third attempt", token: "tok_flaky", wantStatus: payment.ChargeApproved, wantCalls: 3, wantLedger: gatewaysim.StatusApproved},
		{name: "flaky with two attempts stays unavailable", token: "tok_flaky", attempts: 2, wantErr: payment.ErrGatewayUnavailable, wantCalls: 2},
		{name: "timeout with one attempt", token: "tok_timeout", attempts: 1, timeout: 50 * time.Millisecond, wantErr: payment.ErrGatewayTimeout, wantCalls: 1},
		// The simulator approves once the caller gives up; the retry with the same key reads
		// that approval instead of charging again.
		{name: "timeout, then the retry finds the late approval", token: "tok_timeout", timeout: 50 * time.Millisecond,
			wantStatus: payment.ChargeApproved, wantLedger: gatewaysim.StatusApproved},
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
	if again != first || again.Status != payment.ChargeDeclined {
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
			res, err := c.Void(ctx, tt.orderID, payment.IdempotencyKey(tt.orderID))
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != payment.ChargeVoided || (tt.wantID != "" && res.ChargeID != tt.wantID) {
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
	if err != nil || late.Status != payment.ChargeVoided {
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
	if _, err := c.Void(context.Background(), "o1", "pay:o1"); !errors.Is(err, payment.ErrGatewayUnavailable) {
		t.Fatalf("Void = %v, want ErrGatewayUnavailable", err)
	}
	want := `
		# HELP payment_gateway_calls_total Gateway calls (each attempt) by operation and outcome (approved, declined, voided, timeout, unavailable, rejected, canceled).
		# TYPE payment_gateway_calls_total counter
		payment_gateway_calls_total{op="charge",outcome="unavailable"} 3
		payment_gateway_calls_total{op="void",outcome="unavailable"} 3
	`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "payment_gateway_calls_total"); err != nil {
		t.Fatal(err)
	}
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

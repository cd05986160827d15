// Package gatewayhttp is the payment.Gateway of the card gateway's HTTP API (POST /charges,
// POST /charges/void): a per-call timeout, and retries with exponential backoff and jitter on
// transient failures. Every attempt of a call sends the same idempotency key, so a retry never
// charges twice.
//
// Every call carries the merchant's secret (`Authorization: Bearer <secret>`); a 401 is
// payment.ErrGatewayUnauthorized. Every answer, first call, retry, replay or void alike, is
// checked against what was asked: the order id, the idempotency key, the amount and currency,
// and a charge status that the HTTP status allows (201 APPROVED, 402 DECLINED; a replay's 200
// any; a void's answer VOIDED or DECLINED, no money held). An answer that differs, or a 409
// idempotency_conflict, is payment.ErrGatewayMismatch: never an authorization.
package gatewayhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"outboxsaga.dev/payment"
)

// maxResponseBytes caps what is read of a gateway response.
const maxResponseBytes = 1 << 20

// Config sets where the gateway is and how patiently it is called.
type Config struct {
	// URL is the gateway's base URL (the simulator's: stack.Service("gatewaysim").URL()).
	URL string
	// Timeout bounds one HTTP call; 0 means 2s.
	Timeout time.Duration
	// Attempts is how many calls one Charge or Void makes at most; 0 means 4.
	Attempts int
	// Backoff is the wait before the second attempt, doubled before each further one (capped at
	// 2s), half of it random; 0 means 100ms.
	Backoff time.Duration
	// Secret is the merchant's secret the gateway authenticates every call with. Empty sends
	// none: the gateway then answers 401 (payment.ErrGatewayUnauthorized) to every call.
	Secret string
	// Transport sends the calls (nil: http.DefaultTransport); the service's is a traced one
	// (messaging/tracing: a client span per call, its traceparent in the request).
	Transport http.RoundTripper
}

// Client calls the gateway. It is safe for concurrent use.
type Client struct {
	cfg     Config
	http    *http.Client
	metrics *metrics
}

// New returns a client of the gateway at cfg.URL whose metrics are registered on reg.
func New(cfg Config, reg prometheus.Registerer) (*Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("gateway client: URL is required")
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 4
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 100 * time.Millisecond
	}
	// The per-call timeout lives in each request's context, not here, so that a caller's own
	// deadline and ours are told apart.
	return &Client{cfg: cfg, http: &http.Client{Transport: cfg.Transport}, metrics: newMetrics(reg)}, nil
}

type chargeBody struct {
	OrderID        string `json:"orderId"`
	IdempotencyKey string `json:"idempotencyKey"`
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	Token          string `json:"token"`
}

type voidBody struct {
	OrderID        string `json:"orderId"`
	IdempotencyKey string `json:"idempotencyKey"`
}

// Charge asks for req's money. A declined charge is a result with status DECLINED; a repeated
// key returns the ledger's existing charge, whatever its status, once it is checked to be req's
// (else payment.ErrGatewayMismatch, with the answer as the gateway gave it).
func (c *Client) Charge(ctx context.Context, req payment.ChargeRequest) (payment.ChargeResult, error) {
	body := chargeBody(req)
	res, err := c.retry(ctx, "charge", func(ctx context.Context) (payment.ChargeResult, error) {
		res, status, err := c.post(ctx, "/charges", body)
		if err != nil {
			return res, err
		}
		return res, checkCharge(req, status, res)
	})
	if err != nil {
		return res, fmt.Errorf("charge %s: %w", req.IdempotencyKey, err)
	}
	return res, nil
}

// Void gives back the charge of req's key, or leaves a VOIDED placeholder when there is none. Its
// answer must be req's order and key with no money held (VOIDED, or DECLINED), of req's amount
// and currency or a placeholder's (unchecked when req.Amount is 0); else
// payment.ErrGatewayMismatch, with the answer as the gateway gave it.
func (c *Client) Void(ctx context.Context, req payment.VoidRequest) (payment.ChargeResult, error) {
	body := voidBody{OrderID: req.OrderID, IdempotencyKey: req.IdempotencyKey}
	res, err := c.retry(ctx, "void", func(ctx context.Context) (payment.ChargeResult, error) {
		res, _, err := c.post(ctx, "/charges/void", body)
		if err != nil {
			return res, err
		}
		return res, checkVoid(req, res)
	})
	if err != nil {
		return res, fmt.Errorf("void %s: %w", req.IdempotencyKey, err)
	}
	return res, nil
}

// checkCharge compares the answer to a charge request, given with the HTTP status it came with,
// to the request: another order, key, amount or currency, or a charge status the HTTP status
// cannot carry (201 is a new approval, 402 a new decline, 200 a replay of any), is a mismatch. A
// replayed VOIDED placeholder (amount 0, no currency: an earlier attempt gave up and voided the
// key) is the order's own.
func checkCharge(req payment.ChargeRequest, status int, res payment.ChargeResult) error {
	var problems []string
	problems = append(problems, sameKey(req.OrderID, req.IdempotencyKey, res)...)
	placeholder := status == http.StatusOK && isPlaceholder(res)
	if !placeholder {
		problems = append(problems, sameTerms(req.Amount, req.Currency, res)...)
	}
	switch {
	case status == http.StatusCreated && res.Status != payment.ChargeStatusApproved,
		status == http.StatusPaymentRequired && res.Status != payment.ChargeStatusDeclined:
		problems = append(problems, fmt.Sprintf("status %s on HTTP %d", res.Status, status))
	}
	return mismatch("charge", res, problems)
}

// checkVoid compares the answer to a void with the request (see Client.Void).
func checkVoid(req payment.VoidRequest, res payment.ChargeResult) error {
	problems := sameKey(req.OrderID, req.IdempotencyKey, res)
	if req.Amount != 0 && !isPlaceholder(res) {
		problems = append(problems, sameTerms(req.Amount, req.Currency, res)...)
	}
	if res.Status != payment.ChargeStatusVoided && res.Status != payment.ChargeStatusDeclined {
		problems = append(problems, fmt.Sprintf("status %s after a void", res.Status))
	}
	return mismatch("void", res, problems)
}

func sameKey(orderID, key string, res payment.ChargeResult) []string {
	return differences(field{"order", res.OrderID, orderID}, field{"idempotency key", res.IdempotencyKey, key})
}

func sameTerms(amount int64, currency string, res payment.ChargeResult) []string {
	return differences(field{"amount", res.Amount, amount}, field{"currency", res.Currency, currency})
}

// field is one value of the gateway's answer and the value the request asked for.
type field struct {
	name      string
	got, want any
}

// differences says, for each field whose answer is not what was asked, what it is and what it
// should be ("amount 1, want 15000"; strings quoted).
func differences(fields ...field) []string {
	var problems []string
	for _, f := range fields {
		if f.got != f.want {
			problems = append(problems, fmt.Sprintf("%s %#v, want %#v", f.name, f.got, f.want))
		}
	}
	return problems
}

// isPlaceholder reports whether res is the VOIDED placeholder a void leaves on a key that had no
// charge.
func isPlaceholder(res payment.ChargeResult) bool {
	return res.Status == payment.ChargeStatusVoided && res.Amount == 0 && res.Currency == ""
}

// mismatch is the error of an answer with problems (nil when there are none).
func mismatch(op string, res payment.ChargeResult, problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s answer (charge %q): %s", payment.ErrGatewayMismatch, op, res.ChargeID, strings.Join(problems, "; "))
}

// retry runs call up to Attempts times while it fails transiently, each under the per-call
// timeout, and returns its last result.
func (c *Client) retry(ctx context.Context, op string, call func(context.Context) (payment.ChargeResult, error)) (payment.ChargeResult, error) {
	var (
		res payment.ChargeResult
		err error
	)
	for attempt := 1; ; attempt++ {
		start := time.Now()
		callCtx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		res, err = call(callCtx)
		cancel()
		c.metrics.observe(op, res, err, time.Since(start))
		if ctx.Err() != nil {
			// The caller is going away; its own deadline is not the gateway's fault.
			return payment.ChargeResult{}, fmt.Errorf("attempt %d: %w (last error: %v)", attempt, ctx.Err(), err)
		}
		if !payment.IsTransient(err) || attempt >= c.cfg.Attempts {
			return res, err
		}
		select {
		case <-ctx.Done():
			return payment.ChargeResult{}, fmt.Errorf("attempt %d: %w (last error: %v)", attempt, ctx.Err(), err)
		case <-time.After(c.backoff(attempt)):
		}
	}
}

// backoff returns the wait after the given failed attempt: Backoff doubled per attempt, capped at
// 2s, half of it random so that many orders failing at once do not retry in step.
func (c *Client) backoff(attempt int) time.Duration {
	d := min(c.cfg.Backoff<<(attempt-1), 2*time.Second)
	half := d / 2
	return half + rand.N(half+1)
}

// chargeReply is the gateway's view of a charge (plus the decline code on a 402).
type chargeReply struct {
	ChargeID       string `json:"chargeId"`
	OrderID        string `json:"orderId"`
	IdempotencyKey string `json:"idempotencyKey"`
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	Status         string `json:"status"`
	DeclineCode    string `json:"declineCode"`
	Code           string `json:"code"`
	Error          string `json:"error"`
}

// codeIdempotencyConflict is the gateway's error code for a key it holds for other terms.
const codeIdempotencyConflict = "idempotency_conflict"

// post sends one request and classifies its outcome; it returns the HTTP status of a charge
// answer.
func (c *Client) post(ctx context.Context, path string, body any) (payment.ChargeResult, int, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return payment.ChargeResult{}, 0, fmt.Errorf("marshal request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL+path, bytes.NewReader(raw))
	if err != nil {
		return payment.ChargeResult{}, 0, fmt.Errorf("%w: build request: %w", payment.ErrGatewayRejected, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.cfg.Secret != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Secret)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return payment.ChargeResult{}, 0, classify(ctx, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return payment.ChargeResult{}, 0, classify(ctx, err)
	}

	var reply chargeReply
	_ = json.Unmarshal(data, &reply) // an error body may not be JSON; the status says enough
	switch {
	case resp.StatusCode == http.StatusGatewayTimeout:
		return payment.ChargeResult{}, 0, fmt.Errorf("%w: status %d %s", payment.ErrGatewayTimeout, resp.StatusCode, reply.Error)
	case resp.StatusCode >= 500:
		return payment.ChargeResult{}, 0, fmt.Errorf("%w: status %d %s", payment.ErrGatewayUnavailable, resp.StatusCode, reply.Error)
	case resp.StatusCode == http.StatusUnauthorized:
		return payment.ChargeResult{}, 0, fmt.Errorf("%w: status %d %s", payment.ErrGatewayUnauthorized, resp.StatusCode, reply.Error)
	case resp.StatusCode == http.StatusConflict && reply.Code == codeIdempotencyConflict:
		return payment.ChargeResult{}, 0, fmt.Errorf("%w: status %d %s: %s", payment.ErrGatewayMismatch, resp.StatusCode, reply.Code, reply.Error)
	case resp.StatusCode == http.StatusOK, resp.StatusCode == http.StatusCreated, resp.StatusCode == http.StatusPaymentRequired:
		res, err := result(resp.StatusCode, reply)
		return res, resp.StatusCode, err
	default:
		return payment.ChargeResult{}, 0, fmt.Errorf("%w: status %d %s %s", payment.ErrGatewayRejected, resp.StatusCode, reply.Code, reply.Error)
	}
}

// result turns a charge reply into a ChargeResult. A reply that names no charge or an unknown
// status leaves the charge's fate unknown, hence a transient error.
func result(status int, reply chargeReply) (payment.ChargeResult, error) {
	res := payment.ChargeResult{ChargeID: reply.ChargeID, Status: payment.ChargeStatus(reply.Status), DeclineCode: reply.DeclineCode,
		OrderID: reply.OrderID, IdempotencyKey: reply.IdempotencyKey, Amount: reply.Amount, Currency: reply.Currency}
	if res.DeclineCode == "" {
		res.DeclineCode = reply.Code
	}
	switch res.Status {
	case payment.ChargeStatusApproved, payment.ChargeStatusDeclined, payment.ChargeStatusVoided:
	default:
		return payment.ChargeResult{}, fmt.Errorf("%w: status %d with charge status %q", payment.ErrGatewayUnavailable, status, reply.Status)
	}
	if res.ChargeID == "" {
		return payment.ChargeResult{}, fmt.Errorf("%w: status %d without a charge id", payment.ErrGatewayUnavailable, status)
	}
	return res, nil
}

// classify sorts a failed round trip: the call's deadline passed → ErrGatewayTimeout; anything
// else (connection refused or reset) → ErrGatewayUnavailable. The caller's own cancellation is
// told apart in retry.
func classify(callCtx context.Context, err error) error {
	switch {
	case errors.Is(callCtx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", payment.ErrGatewayTimeout, err)
	default:
		return fmt.Errorf("%w: %w", payment.ErrGatewayUnavailable, err)
	}
}

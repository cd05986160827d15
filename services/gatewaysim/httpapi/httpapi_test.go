package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/gatewaysim"
	"outboxsaga.dev/gatewaysim/httpapi"
	"outboxsaga.dev/messaging/eventually"
)

// charge is the JSON a client sees; Code is set on 402 answers.
type charge struct {
	ChargeID       string `json:"chargeId"`
	OrderID        string `json:"orderId"`
	IdempotencyKey string `json:"idempotencyKey"`
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	Status         string `json:"status"`
	Code           string `json:"code"`
	CreatedAt      string `json:"createdAt"`
	UpdatedAt      string `json:"updatedAt"`
}

type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// secret is the merchant secret of the tests' simulators; call and tryCall send it.
const secret = "s3cret-of-the-merchant"

func newServer(t *testing.T, cfg gatewaysim.Config) *httptest.Server {
	t.Helper()
	h, err := httpapi.NewHandler(gatewaysim.NewLedger(cfg), secret, zerolog.Nop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// held is a tok_timeout delay the test controls (gatewaysim.Config.After): started receives once
// the gateway works on a charge, which is then in flight, and every such charge lands when the
// test closes release.
type held struct {
	started chan struct{}
	release chan time.Time
}

func newHeld() *held {
	return &held{started: make(chan struct{}, 16), release: make(chan time.Time)}
}

func (h *held) after(time.Duration) <-chan time.Time {
	h.started <- struct{}{}
	return h.release
}

// inFlight waits until the gateway works on a charge.
func (h *held) inFlight(t *testing.T) {
	t.Helper()
	select {
	case <-h.started:
	case <-time.After(5 * time.Second):
		t.Fatal("no charge in flight within 5s")
	}
}

// answer is what a charge sent in the background got.
type answer struct {
	status int
	body   []byte
	err    error
}

// charge sends req (a tok_timeout charge) in the background and returns once the gateway works on
// it; its answer comes on the channel after land.
func (h *held) charge(t *testing.T, srv *httptest.Server, req map[string]any) <-chan answer {
	t.Helper()
	done := make(chan answer, 1)
	go func() {
		status, body, err := tryCall(srv, http.MethodPost, "/charges", req)
		done <- answer{status, body, err}
	}()
	h.inFlight(t)
	return done
}

// land lets every charge in flight finish and returns the answer of the one on done.
func (h *held) land(t *testing.T, done <-chan answer) answer {
	t.Helper()
	close(h.release)
	a := <-done
	if a.err != nil {
		t.Fatal(a.err)
	}
	return a
}

func defaultConfig() gatewaysim.Config {
	return gatewaysim.Config{TimeoutDelay: 20 * time.Millisecond, FlakyFailures: 2}
}

// call sends body (a string is sent as is, anything else as JSON) and returns
// the status and the response body.
func call(t *testing.T, srv *httptest.Server, method, path string, body any) (int, []byte) {
	t.Helper()
	status, data, err := tryCall(srv, method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	return status, data
}

// tryCall is call for goroutines other than the test's.
func tryCall(srv *httptest.Server, method, path string, body any) (int, []byte, error) {
	return tryCallAs(srv, "Bearer "+secret, method, path, body)
}

// tryCallAs is tryCall with the Authorization header auth ("" sends none).
func tryCallAs(srv *httptest.Server, auth, method, path string, body any) (int, []byte, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return 0, nil, fmt.Errorf("marshal: %w", err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, srv.URL+path, r)
	if err != nil {
		return 0, nil, fmt.Errorf("new request: %w", err)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("read body: %w", err)
	}
	return resp.StatusCode, data, nil
}

func decodeInto[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
	return v
}

func chargeReq(orderID, key, token string) map[string]any {
	return map[string]any{
		"orderId": orderID, "idempotencyKey": key,
		"amount": 39000, "currency": "KRW", "token": token,
	}
}

func voidReq(orderID, key string) map[string]any {
	return map[string]any{"orderId": orderID, "idempotencyKey": key}
}

func listCharges(t *testing.T, srv *httptest.Server, orderID string) []charge {
	t.Helper()
	status, body := call(t, srv, http.MethodGet, "/charges?orderId="+orderID, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /charges: status %d, body %s", status, body)
	}
	return decodeInto[[]charge](t, body)
}

func TestChargeTokens(t *testing.T) {
	tests := []struct {
		name, token          string
		wantStatus           int
		wantCharge, wantCode string
	}{
		{name: "ok approves", token: gatewaysim.TokenOK, wantStatus: http.StatusCreated, wantCharge: "APPROVED"},
		{name: "declined", token: gatewaysim.TokenDeclined, wantStatus: http.StatusPaymentRequired, wantCharge: "DECLINED", wantCode: "CARD_DECLINED"},
		{name: "timeout approves late", token: gatewaysim.TokenTimeout, wantStatus: http.StatusCreated, wantCharge: "APPROVED"},
		{name: "unknown token", token: "tok_nope", wantStatus: http.StatusPaymentRequired, wantCharge: "DECLINED", wantCode: "INVALID_TOKEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, defaultConfig())

			status, body := call(t, srv, http.MethodPost, "/charges", chargeReq("o1", "pay:o1", tt.token))
			if status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", status, tt.wantStatus, body)
			}
			got := decodeInto[charge](t, body)
			if got.Status != tt.wantCharge || got.Code != tt.wantCode {
				t.Errorf("charge status/code = %s/%q, want %s/%q", got.Status, got.Code, tt.wantCharge, tt.wantCode)
			}
			if !strings.HasPrefix(got.ChargeID, "ch_") || got.Amount != 39000 || got.Currency != "KRW" || got.OrderID != "o1" {
				t.Errorf("unexpected charge %+v", got)
			}

			list := listCharges(t, srv, "o1")
			if len(list) != 1 || list[0].ChargeID != got.ChargeID || list[0].Status != tt.wantCharge {
				t.Errorf("ledger = %+v, want the one charge %s", list, got.ChargeID)
			}
		})
	}
}

func TestChargeIdempotent(t *testing.T) {
	tests := []struct {
		name        string
		token       string
		firstStatus int
		wantStatus  string
	}{
		{name: "approved", token: gatewaysim.TokenOK, firstStatus: http.StatusCreated, wantStatus: "APPROVED"},
		{name: "declined", token: gatewaysim.TokenDeclined, firstStatus: http.StatusPaymentRequired, wantStatus: "DECLINED"},
		{name: "timeout", token: gatewaysim.TokenTimeout, firstStatus: http.StatusCreated, wantStatus: "APPROVED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, defaultConfig())

			status, body := call(t, srv, http.MethodPost, "/charges", chargeReq("o1", "k1", tt.token))
			if status != tt.firstStatus {
				t.Fatalf("first status = %d, want %d (body %s)", status, tt.firstStatus, body)
			}
			first := decodeInto[charge](t, body)

			// The second try of the same terms gets the first charge, whatever its token says.
			status, body = call(t, srv, http.MethodPost, "/charges", chargeReq("o1", "k1", gatewaysim.TokenOK))
			if status != http.StatusOK {
				t.Fatalf("second status = %d, want 200 (body %s)", status, body)
			}
			second := decodeInto[charge](t, body)
			if second.ChargeID != first.ChargeID || second.Status != tt.wantStatus || second.Amount != 39000 {
				t.Errorf("second = %+v, want the first %+v", second, first)
			}
			if list := listCharges(t, srv, "o1"); len(list) != 1 {
				t.Errorf("ledger has %d charges, want 1", len(list))
			}
		})
	}
}

func TestChargeIdempotentConcurrent(t *testing.T) {
	srv := newServer(t, defaultConfig())

	const n = 20
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, body, err := tryCall(srv, http.MethodPost, "/charges", chargeReq("o1", "k1", gatewaysim.TokenTimeout))
			if err != nil {
				t.Error(err)
				return
			}
			var c charge
			if err := json.Unmarshal(body, &c); err != nil {
				t.Errorf("decode %q: %v", body, err)
			}
			ids[i] = c.ChargeID
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("charge ids differ: %v", ids)
		}
	}
	if list := listCharges(t, srv, "o1"); len(list) != 1 {
		t.Errorf("ledger has %d charges, want 1", len(list))
	}
}

func TestChargeFlaky(t *testing.T) {
	srv := newServer(t, defaultConfig())

	want := []int{http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusCreated, http.StatusOK}
	var got []int
	for range want {
		status, body := call(t, srv, http.MethodPost, "/charges", chargeReq("o1", "k1", gatewaysim.TokenFlaky))
		got = append(got, status)
		if status == http.StatusServiceUnavailable {
			if e := decodeInto[apiError](t, body); e.Code != "unavailable" {
				t.Errorf("503 code = %q, want unavailable", e.Code)
			}
			if list := listCharges(t, srv, "o1"); len(list) != 0 {
				t.Errorf("a 503 recorded a charge: %+v", list)
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}

	// Every key has its own count.
	if status, _ := call(t, srv, http.MethodPost, "/charges", chargeReq("o2", "k2", gatewaysim.TokenFlaky)); status != http.StatusServiceUnavailable {
		t.Errorf("new key: status = %d, want 503", status)
	}
}

// TestTimeoutVoidedWhileInFlight voids the key of a tok_timeout charge while the gateway still
// works on it: the charge then lands on the VOIDED placeholder and never approves.
func TestTimeoutVoidedWhileInFlight(t *testing.T) {
	h := newHeld()
	srv := newServer(t, gatewaysim.Config{TimeoutDelay: time.Hour, After: h.after})
	done := h.charge(t, srv, chargeReq("o1", "k1", gatewaysim.TokenTimeout))

	status, body := call(t, srv, http.MethodPost, "/charges/void", voidReq("o1", "k1"))
	if status != http.StatusOK {
		t.Fatalf("void status = %d, want 200 (body %s)", status, body)
	}
	voided := decodeInto[charge](t, body)
	if voided.Status != "VOIDED" || voided.Amount != 0 {
		t.Errorf("void = %+v, want a VOIDED placeholder of amount 0", voided)
	}
	select {
	case late := <-done:
		t.Fatalf("the charge answered (%d %s) before the gateway finished it", late.status, late.body)
	default:
	}

	late := h.land(t, done) // the gateway finishes the charge
	if late.status != http.StatusOK {
		t.Fatalf("late charge status = %d, want 200 (body %s)", late.status, late.body)
	}
	if c := decodeInto[charge](t, late.body); c.ChargeID != voided.ChargeID || c.Status != "VOIDED" {
		t.Errorf("late charge = %+v, want the placeholder %s", c, voided.ChargeID)
	}
	list := listCharges(t, srv, "o1")
	if len(list) != 1 || list[0].Status != "VOIDED" {
		t.Errorf("ledger = %+v, want one VOIDED charge", list)
	}
}

// TestTimeoutClientGoneStillApproves: the gateway keeps working on a tok_timeout charge after
// its client left, and takes the money: the answer is lost, not the charge.
func TestTimeoutClientGoneStillApproves(t *testing.T) {
	h := newHeld()
	srv := newServer(t, gatewaysim.Config{TimeoutDelay: time.Hour, After: h.after})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	data, err := json.Marshal(chargeReq("o1", "k1", gatewaysim.TokenTimeout))
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/charges", bytes.NewReader(data))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	answered := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("got an answer (%d), want the client to give up", resp.StatusCode)
		} else {
			err = nil
		}
		answered <- err
	}()
	h.inFlight(t)
	cancel() // the client gives up
	if err := <-answered; err != nil {
		t.Fatal(err)
	}

	if list := listCharges(t, srv, "o1"); len(list) != 0 {
		t.Fatalf("ledger = %+v before the gateway finished, want nothing yet", list)
	}
	close(h.release) // the gateway finishes the charge all the same
	eventually.Holds(t, 2*time.Second, func() string {
		if list := listCharges(t, srv, "o1"); len(list) != 1 || list[0].Status != "APPROVED" {
			return fmt.Sprintf("ledger = %+v, want one APPROVED charge", list)
		}
		return ""
	})
}

func TestVoid(t *testing.T) {
	tests := []struct {
		name       string
		token      string // charge first with this token; "" charges nothing
		wantStatus string
		wantAmount int64
	}{
		{name: "approved becomes voided", token: gatewaysim.TokenOK, wantStatus: "VOIDED", wantAmount: 39000},
		{name: "declined stays declined", token: gatewaysim.TokenDeclined, wantStatus: "DECLINED", wantAmount: 39000},
		{name: "no charge leaves a placeholder", token: "", wantStatus: "VOIDED", wantAmount: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, defaultConfig())
			if tt.token != "" {
				call(t, srv, http.MethodPost, "/charges", chargeReq("o1", "k1", tt.token))
			}

			var ids []string
			for range 2 { // Voiding is idempotent.
				status, body := call(t, srv, http.MethodPost, "/charges/void", voidReq("o1", "k1"))
				if status != http.StatusOK {
					t.Fatalf("void status = %d, want 200 (body %s)", status, body)
				}
				c := decodeInto[charge](t, body)
				if c.Status != tt.wantStatus || c.Amount != tt.wantAmount {
					t.Errorf("void = %+v, want status %s amount %d", c, tt.wantStatus, tt.wantAmount)
				}
				ids = append(ids, c.ChargeID)
			}
			if ids[0] != ids[1] {
				t.Errorf("void returned two charges: %v", ids)
			}

			// A charge after the void never approves.
			status, body := call(t, srv, http.MethodPost, "/charges", chargeReq("o1", "k1", gatewaysim.TokenOK))
			if c := decodeInto[charge](t, body); status != http.StatusOK || c.Status != tt.wantStatus {
				t.Errorf("charge after void = %d %+v, want 200 %s", status, c, tt.wantStatus)
			}
			if list := listCharges(t, srv, "o1"); len(list) != 1 {
				t.Errorf("ledger has %d charges, want 1", len(list))
			}
		})
	}
}

func TestListCharges(t *testing.T) {
	srv := newServer(t, defaultConfig())
	call(t, srv, http.MethodPost, "/charges", chargeReq("o1", "k1", gatewaysim.TokenOK))
	call(t, srv, http.MethodPost, "/charges", chargeReq("o1", "k2", gatewaysim.TokenDeclined))
	call(t, srv, http.MethodPost, "/charges", chargeReq("o2", "k3", gatewaysim.TokenOK))

	tests := []struct {
		name     string
		query    string
		wantKeys []string
	}{
		{name: "one order", query: "?orderId=o1", wantKeys: []string{"k1", "k2"}},
		{name: "other order", query: "?orderId=o2", wantKeys: []string{"k3"}},
		{name: "all", query: "", wantKeys: []string{"k1", "k2", "k3"}},
		{name: "unknown order", query: "?orderId=o9", wantKeys: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(t, srv, http.MethodGet, "/charges"+tt.query, nil)
			if status != http.StatusOK {
				t.Fatalf("status = %d, want 200", status)
			}
			if !bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
				t.Fatalf("body %s is not an array", body)
			}
			keys := []string{}
			for _, c := range decodeInto[[]charge](t, body) {
				keys = append(keys, c.IdempotencyKey)
				if c.CreatedAt == "" || c.UpdatedAt == "" {
					t.Errorf("charge %s lacks timestamps", c.ChargeID)
				}
			}
			if !slices.Equal(keys, tt.wantKeys) {
				t.Errorf("keys = %v, want %v", keys, tt.wantKeys)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name       string
		path       string
		body       string
		wantStatus int
		wantCode   string
	}{
		{name: "missing orderId", path: "/charges", body: `{"idempotencyKey":"k","amount":1,"currency":"KRW","token":"tok_ok"}`, wantStatus: 400, wantCode: "invalid"},
		{name: "missing key", path: "/charges", body: `{"orderId":"o","amount":1,"currency":"KRW","token":"tok_ok"}`, wantStatus: 400, wantCode: "invalid"},
		{name: "zero amount", path: "/charges", body: `{"orderId":"o","idempotencyKey":"k","amount":0,"currency":"KRW","token":"tok_ok"}`, wantStatus: 400, wantCode: "invalid"},
		{name: "negative amount", path: "/charges", body: `{"orderId":"o","idempotencyKey":"k","amount":-5,"currency":"KRW","token":"tok_ok"}`, wantStatus: 400, wantCode: "invalid"},
		{name: "bad currency", path: "/charges", body: `{"orderId":"o","idempotencyKey":"k","amount":1,"currency":"krw","token":"tok_ok"}`, wantStatus: 400, wantCode: "invalid"},
		{name: "missing token", path: "/charges", body: `{"orderId":"o","idempotencyKey":"k","amount":1,"currency":"KRW"}`, wantStatus: 400, wantCode: "invalid"},
		{name: "unknown field", path: "/charges", body: `{"orderId":"o","idempotencyKey":"k","amount":1,"currency":"KRW","token":"tok_ok","extra":1}`, wantStatus: 400, wantCode: "invalid"},
		{name: "malformed", path: "/charges", body: `{"orderId":`, wantStatus: 400, wantCode: "invalid"},
		{name: "wrong type", path: "/charges", body: `{"orderId":"o","idempotencyKey":"k","amount":"1","currency":"KRW","token":"tok_ok"}`, wantStatus: 400, wantCode: "invalid"},
		{name: "trailing data", path: "/charges", body: `{"orderId":"o","idempotencyKey":"k","amount":1,"currency":"KRW","token":"tok_ok"} {}`, wantStatus: 400, wantCode: "invalid"},
		{name: "empty body", path: "/charges", body: ``, wantStatus: 400, wantCode: "invalid"},
		{name: "too large", path: "/charges", body: `{"orderId":"` + strings.Repeat("x", 1<<20) + `"}`, wantStatus: 413, wantCode: "too_large"},
		{name: "void missing key", path: "/charges/void", body: `{"orderId":"o"}`, wantStatus: 400, wantCode: "invalid"},
		{name: "void missing orderId", path: "/charges/void", body: `{"idempotencyKey":"k"}`, wantStatus: 400, wantCode: "invalid"},
		{name: "void unknown field", path: "/charges/void", body: `{"orderId":"o","idempotencyKey":"k","amount":1}`, wantStatus: 400, wantCode: "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, defaultConfig())

			status, body := call(t, srv, http.MethodPost, tt.path, tt.body)
			if status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", status, tt.wantStatus, body)
			}
			if e := decodeInto[apiError](t, body); e.Code != tt.wantCode || e.Error == "" {
				t.Errorf("error = %+v, want code %s and a message", e, tt.wantCode)
			}
			if list := listCharges(t, srv, ""); len(list) != 0 {
				t.Errorf("bad input recorded %+v", list)
			}
		})
	}
}

func TestOperationalEndpoints(t *testing.T) {
	srv := newServer(t, defaultConfig())
	call(t, srv, http.MethodPost, "/charges", chargeReq("o1", "k1", gatewaysim.TokenOK))
	call(t, srv, http.MethodPost, "/charges/void", voidReq("o1", "k1"))

	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantInBody []string
	}{
		{name: "healthz", path: "/healthz", wantStatus: http.StatusOK},
		{name: "readyz", path: "/readyz", wantStatus: http.StatusOK},
		{name: "metrics", path: "/metrics", wantStatus: http.StatusOK, wantInBody: []string{
			`gatewaysim_charges_total{outcome="approved",token="tok_ok"} 1`,
			`gatewaysim_voids_total{outcome="voided"} 1`,
		}},
		{name: "unknown path", path: "/nope", wantStatus: http.StatusNotFound, wantInBody: []string{`"code":"not_found"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(t, srv, http.MethodGet, tt.path, nil)
			if status != tt.wantStatus {
				t.Fatalf("status = %d, want %d", status, tt.wantStatus)
			}
			for _, s := range tt.wantInBody {
				if !strings.Contains(string(body), s) {
					t.Errorf("body lacks %q:\n%s", s, body)
				}
			}
		})
	}
}

func TestNewHandlerRefusesAnEmptySecret(t *testing.T) {
	if _, err := httpapi.NewHandler(gatewaysim.NewLedger(defaultConfig()), "", zerolog.Nop(), prometheus.NewRegistry()); err == nil {
		t.Fatal("NewHandler with an empty secret = nil error, want a refusal")
	}
}

// TestMerchantAuth: every /charges call needs the merchant secret; without it, or with another,
// the gateway answers 401 and neither charges, voids nor lists anything. Health and metrics stay
// open.
func TestMerchantAuth(t *testing.T) {
	srv := newServer(t, defaultConfig())
	call(t, srv, http.MethodPost, "/charges", chargeReq("o1", "pay:o1", gatewaysim.TokenOK))

	auths := []struct{ name, header string }{
		{name: "no header", header: ""},
		{name: "wrong secret", header: "Bearer not-the-secret"},
		{name: "secret with a suffix", header: "Bearer " + secret + "x"},
		{name: "secret without Bearer", header: secret},
		{name: "basic scheme", header: "Basic " + secret},
	}
	requests := []struct {
		name, method, path string
		body               any
	}{
		{name: "charge under a known key", method: http.MethodPost, path: "/charges", body: map[string]any{
			"orderId": "o1", "idempotencyKey": "pay:o1", "amount": 1, "currency": "KRW", "token": gatewaysim.TokenOK}},
		{name: "new charge", method: http.MethodPost, path: "/charges", body: chargeReq("o2", "pay:o2", gatewaysim.TokenOK)},
		{name: "void", method: http.MethodPost, path: "/charges/void", body: voidReq("o1", "pay:o1")},
		{name: "list one order", method: http.MethodGet, path: "/charges?orderId=o1"},
		{name: "list all", method: http.MethodGet, path: "/charges"},
	}
	for _, a := range auths {
		for _, rq := range requests {
			t.Run(a.name+"/"+rq.name, func(t *testing.T) {
				status, body, err := tryCallAs(srv, a.header, rq.method, rq.path, rq.body)
				if err != nil {
					t.Fatal(err)
				}
				if status != http.StatusUnauthorized {
					t.Fatalf("status = %d, want 401 (body %s)", status, body)
				}
				if e := decodeInto[apiError](t, body); e.Code != "unauthorized" || e.Error == "" {
					t.Errorf("error = %+v, want code unauthorized and a message", e)
				}
				if strings.Contains(string(body), "o1") || strings.Contains(string(body), "ch_") {
					t.Errorf("a refusal leaked the ledger: %s", body)
				}
			})
		}
	}

	list := listCharges(t, srv, "")
	if len(list) != 1 || list[0].Status != "APPROVED" || list[0].Amount != 39000 {
		t.Fatalf("ledger = %+v, want the one APPROVED charge of 39000, untouched", list)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if status, _, err := tryCallAs(srv, "", http.MethodGet, path, nil); err != nil || status != http.StatusOK {
			t.Errorf("GET %s without the secret = %d, %v; want 200", path, status, err)
		}
	}
}

// TestIdempotencyConflict: a known key reused with another order, amount or currency is refused
// with 409 idempotency_conflict, and the charge of the key stays as it was; the same terms (any
// token) get the charge back.
func TestIdempotencyConflict(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(map[string]any)
		wantStatus int
	}{
		{name: "amount 1", edit: func(r map[string]any) { r["amount"] = 1 }, wantStatus: http.StatusConflict},
		{name: "a larger amount", edit: func(r map[string]any) { r["amount"] = 39001 }, wantStatus: http.StatusConflict},
		{name: "another currency", edit: func(r map[string]any) { r["currency"] = "USD" }, wantStatus: http.StatusConflict},
		{name: "another order", edit: func(r map[string]any) { r["orderId"] = "o2" }, wantStatus: http.StatusConflict},
		{name: "same terms, another token", edit: func(r map[string]any) { r["token"] = gatewaysim.TokenDeclined }, wantStatus: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, defaultConfig())
			status, body := call(t, srv, http.MethodPost, "/charges", chargeReq("o1", "pay:o1", gatewaysim.TokenOK))
			if status != http.StatusCreated {
				t.Fatalf("first charge = %d %s", status, body)
			}
			first := decodeInto[charge](t, body)

			again := chargeReq("o1", "pay:o1", gatewaysim.TokenOK)
			tt.edit(again)
			status, body = call(t, srv, http.MethodPost, "/charges", again)
			if status != tt.wantStatus {
				t.Fatalf("reuse = %d %s, want %d", status, body, tt.wantStatus)
			}
			if status == http.StatusConflict {
				if e := decodeInto[apiError](t, body); e.Code != "idempotency_conflict" || e.Error == "" {
					t.Errorf("error = %+v, want code idempotency_conflict", e)
				}
				if strings.Contains(string(body), first.ChargeID) {
					t.Errorf("the conflict returned the existing charge: %s", body)
				}
			} else if c := decodeInto[charge](t, body); c != first {
				t.Errorf("reuse = %+v, want the first charge %+v", c, first)
			}
			list := listCharges(t, srv, "")
			if len(list) != 1 || list[0].ChargeID != first.ChargeID || list[0].Status != "APPROVED" ||
				list[0].Amount != 39000 || list[0].Currency != "KRW" || list[0].OrderID != "o1" {
				t.Errorf("ledger = %+v, want the first charge untouched", list)
			}
		})
	}
}

// TestIdempotencyConflictInFlight: while a tok_timeout charge is in flight, a request of its key
// with other terms is refused at once, and the charge lands as first asked.
func TestIdempotencyConflictInFlight(t *testing.T) {
	h := newHeld()
	srv := newServer(t, gatewaysim.Config{TimeoutDelay: time.Hour, After: h.after})
	done := h.charge(t, srv, chargeReq("o1", "pay:o1", gatewaysim.TokenTimeout))

	attack := chargeReq("o1", "pay:o1", gatewaysim.TokenOK)
	attack["amount"] = 1
	if status, body := call(t, srv, http.MethodPost, "/charges", attack); status != http.StatusConflict {
		t.Fatalf("conflicting charge in flight = %d %s, want 409", status, body)
	}
	if status, body := call(t, srv, http.MethodPost, "/charges/void", voidReq("o2", "pay:o1")); status != http.StatusConflict {
		t.Fatalf("void of another order's key in flight = %d %s, want 409", status, body)
	}

	got := h.land(t, done)
	if c := decodeInto[charge](t, got.body); got.status != http.StatusCreated || c.Status != "APPROVED" || c.Amount != 39000 {
		t.Fatalf("charge = %d %s, want 201 APPROVED of 39000", got.status, got.body)
	}
}

// TestVoidOfAnotherOrder: a void names the order of the key; another order's void is refused and
// the charge stays APPROVED.
func TestVoidOfAnotherOrder(t *testing.T) {
	srv := newServer(t, defaultConfig())
	call(t, srv, http.MethodPost, "/charges", chargeReq("o1", "pay:o1", gatewaysim.TokenOK))

	status, body := call(t, srv, http.MethodPost, "/charges/void", voidReq("o2", "pay:o1"))
	if status != http.StatusConflict || decodeInto[apiError](t, body).Code != "idempotency_conflict" {
		t.Fatalf("void = %d %s, want 409 idempotency_conflict", status, body)
	}
	if list := listCharges(t, srv, "o1"); len(list) != 1 || list[0].Status != "APPROVED" {
		t.Fatalf("ledger = %+v, want the charge still APPROVED", list)
	}
}

// TestChargeAfterPlaceholder: a VOIDED placeholder (a void before any charge) holds its key for
// its order: a charge of that order, whatever its amount, gets the placeholder; another order's
// is refused.
func TestChargeAfterPlaceholder(t *testing.T) {
	srv := newServer(t, defaultConfig())
	call(t, srv, http.MethodPost, "/charges/void", voidReq("o1", "pay:o1"))

	if status, body := call(t, srv, http.MethodPost, "/charges", chargeReq("o1", "pay:o1", gatewaysim.TokenOK)); status != http.StatusOK ||
		decodeInto[charge](t, body).Status != "VOIDED" {
		t.Fatalf("charge after the void = %d %s, want 200 VOIDED", status, body)
	}
	if status, body := call(t, srv, http.MethodPost, "/charges", chargeReq("o2", "pay:o1", gatewaysim.TokenOK)); status != http.StatusConflict {
		t.Fatalf("another order's charge = %d %s, want 409", status, body)
	}
}

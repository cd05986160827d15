package invariant

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"outboxsaga.dev/tools/stackenv"
	"sync"
	"time"
)

// Endpoints are the public surfaces the checker reads.
type Endpoints struct {
	// Env holds the addresses (stackenv.Load reads them); the Kafka brokers, the admin URL of
	// Postgres (read once: the replication slots' lag, for quiescence and WAL figures) and the
	// operator token among them.
	stackenv.Env
}

// OrderView is GET /orders/{id}.
type OrderView struct {
	OrderID string `json:"orderId"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Amount  int64  `json:"amount"`
	// Currency is the order's currency (its amount's).
	Currency string `json:"currency"`
	// Delivery is how far the order's delivery has come as the order service knows it ("" for
	// none yet, PREPARING, SHIPPED, DELIVERED).
	Delivery string `json:"delivery"`
	// CreatedAt and UpdatedAt date the order's placement and its last status change.
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// StockView is GET /stock/{sku}.
type StockView struct {
	SKU       string `json:"sku"`
	Available int64  `json:"available"`
	Reserved  int64  `json:"reserved"`
	Sold      int64  `json:"sold"`
}

// Charge is one entry of the gateway's ledger (GET /charges).
type Charge struct {
	ChargeID string `json:"chargeId"`
	OrderID  string `json:"orderId"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Status   string `json:"status"`
}

// AllCharges reads the gateway's whole ledger in one request (GET /charges without orderId),
// grouped by order id: one request instead of one per order (the simulator scans its ledger
// on every query). The gateway lists its ledger only to the merchant: the request carries
// GatewaySecret (GATEWAY_MERCHANT_SECRET).
func (e Endpoints) AllCharges(ctx context.Context) (map[string][]Charge, error) {
	var cs []Charge
	if _, err := getRetry(ctx, e.GatewayURL+"/charges", e.GatewaySecret, &cs); err != nil {
		return nil, err
	}
	out := map[string][]Charge{}
	for _, c := range cs {
		out[c.OrderID] = append(out[c.OrderID], c)
	}
	return out, nil
}

// PaymentView is GET /payments/{orderId}.
type PaymentView struct {
	OrderID string `json:"orderId"`
	Status  string `json:"status"`
	Amount  int64  `json:"amount"`
}

// Terminal reports whether an order status is final.
func Terminal(status string) bool { return status == "COMPLETED" || status == "CANCELED" }

var httpClient = &http.Client{Timeout: 10 * time.Second}

// getJSON GETs url into out; it returns the status (0 on a connection error).
func getJSON(ctx context.Context, rawURL, token string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, fmt.Errorf("build GET %s: %w", rawURL, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", rawURL, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, fmt.Errorf("read GET %s: %w", rawURL, err)
	}
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, fmt.Errorf("GET %s: %d %s", rawURL, res.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return res.StatusCode, fmt.Errorf("decode GET %s: %w", rawURL, err)
	}
	return res.StatusCode, nil
}

// getRetry is getJSON retried for a while on connection errors and 5xx (a component restarting).
func getRetry(ctx context.Context, rawURL, token string, out any) (int, error) {
	var (
		code int
		err  error
	)
	for try := 0; try < 30; try++ {
		code, err = getJSON(ctx, rawURL, token, out)
		if err == nil || (code != 0 && code < 500) || ctx.Err() != nil {
			return code, err
		}
		time.Sleep(500 * time.Millisecond)
	}
	return code, err
}

// Order reads one order, as the operator (AdminToken: an operator may read any customer's order).
func (e Endpoints) Order(ctx context.Context, id string) (OrderView, error) {
	var o OrderView
	_, err := getRetry(ctx, e.OrderURL+"/orders/"+url.PathEscape(id), e.AdminToken, &o)
	return o, err
}

// Stock reads one SKU.
func (e Endpoints) Stock(ctx context.Context, sku string) (StockView, error) {
	var s StockView
	_, err := getRetry(ctx, e.InventoryURL+"/stock/"+url.PathEscape(sku), "", &s)
	return s, err
}

// Charges reads the gateway's ledger for one order, as the merchant (GatewaySecret).
func (e Endpoints) Charges(ctx context.Context, orderID string) ([]Charge, error) {
	var cs []Charge
	_, err := getRetry(ctx, e.GatewayURL+"/charges?orderId="+url.QueryEscape(orderID), e.GatewaySecret, &cs)
	return cs, err
}

// Payment reads the payment service's view of one order (found=false on 404), as the operator.
func (e Endpoints) Payment(ctx context.Context, orderID string) (PaymentView, bool, error) {
	return getFound[PaymentView](ctx, e.PaymentURL+"/payments/"+url.PathEscape(orderID), e.AdminToken)
}

// getFound reads what rawURL answers into a T, sending token as a bearer token (none if empty);
// found is false when it answers 404.
func getFound[T any](ctx context.Context, rawURL, token string) (v T, found bool, err error) {
	code, err := getRetry(ctx, rawURL, token, &v)
	if code == http.StatusNotFound {
		return v, false, nil
	}
	return v, err == nil, err
}

// DeadLetter is one entry of a service's GET /dead-letters.
type DeadLetter struct {
	ID        int64  `json:"id"`
	Service   string `json:"service"`
	EventID   string `json:"eventId"`
	EventType string `json:"eventType"`
	Topic     string `json:"topic"`
	Key       string `json:"key"`
	Error     string `json:"error"`
}

// MaxDeadLetters is the most GET /dead-letters returns at once (newest first).
const MaxDeadLetters = 1000

// DeadLetters reads a service's newest dead letters (at most MaxDeadLetters).
func (e Endpoints) DeadLetters(ctx context.Context, serviceURL string) ([]DeadLetter, error) {
	var dls []DeadLetter
	_, err := getRetry(ctx, fmt.Sprintf("%s/dead-letters?limit=%d", serviceURL, MaxDeadLetters), e.AdminToken, &dls)
	return dls, err
}

// parallel runs f for every index in [0, n) with at most workers at once and returns the first error.
func parallel(ctx context.Context, n, workers int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := f(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		})
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

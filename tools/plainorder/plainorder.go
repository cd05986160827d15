// Package plainorder places one plain order on the running stack and waits until it is
// COMPLETED: the smallest proof that the whole pipeline works (HTTP → outbox → Debezium → Kafka →
// consumers → back). The scripts and tests that want a plain order (the clone test, the heal
// test) place it here only: adapt this package when the API changes.
package plainorder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"outboxsaga.dev/tools/stackenv"
)

// The order: one unit of SKU at UnitPrice KRW, paid with a card the gateway approves, placed as
// Customer.
const (
	SKU       = "PLAIN-1"
	UnitPrice = 15000
	Customer  = "U-plain"
)

// Bearers issues the customer's Authorization header (stackenv.Customers does).
type Bearers interface {
	Bearer(customer string) (string, error)
}

// Orderer places plain orders on one stack.
type Orderer struct {
	Env       stackenv.Env
	Customers Bearers
	Client    *http.Client
	// Poll is how often Await asks for the order's status.
	Poll time.Duration
}

// New is an Orderer of the stack env describes, its customers' tokens minted by customers.
func New(env stackenv.Env, customers Bearers) *Orderer {
	return &Orderer{Env: env, Customers: customers, Client: &http.Client{Timeout: 10 * time.Second}, Poll: 500 * time.Millisecond}
}

// Place prices and stocks SKU as the operator, places the order as Customer and returns its id.
func (o *Orderer) Place(ctx context.Context) (string, error) {
	if o.Env.AdminToken == "" {
		return "", errors.New("no operator token: the stack's admin-token is missing (bring the stack up: make up)")
	}
	admin := "Bearer " + o.Env.AdminToken
	if err := o.expect(ctx, http.MethodPut, o.Env.OrderURL+"/prices/"+SKU, admin,
		map[string]any{"unitPrice": UnitPrice, "currency": "KRW"}, http.StatusOK, nil); err != nil {
		return "", err
	}
	if err := o.expect(ctx, http.MethodPut, o.Env.InventoryURL+"/stock/"+SKU, admin,
		map[string]any{"available": 1000}, http.StatusOK, nil); err != nil {
		return "", err
	}
	bearer, err := o.Customers.Bearer(Customer)
	if err != nil {
		return "", err
	}
	order := map[string]any{"customerId": Customer, "currency": "KRW", "paymentToken": "tok_ok",
		"items": []map[string]any{{"sku": SKU, "qty": 1, "unitPrice": UnitPrice}}}
	var placed struct {
		OrderID string `json:"orderId"`
	}
	if err := o.expect(ctx, http.MethodPost, o.Env.OrderURL+"/orders", bearer, order, http.StatusAccepted, &placed); err != nil {
		return "", err
	}
	if placed.OrderID == "" {
		return "", errors.New("POST /orders answered no orderId")
	}
	return placed.OrderID, nil
}

// Await waits until order id is COMPLETED; it fails when the order ends CANCELED or ctx ends first.
func (o *Orderer) Await(ctx context.Context, id string) error {
	bearer, err := o.Customers.Bearer(Customer)
	if err != nil {
		return err
	}
	var last struct{ Status, Reason string }
	status := "unread"
	for {
		err := o.expect(ctx, http.MethodGet, o.Env.OrderURL+"/orders/"+id, bearer, nil, http.StatusOK, &last)
		if err == nil {
			status = last.Status
			switch status {
			case "COMPLETED":
				return nil
			case "CANCELED":
				return fmt.Errorf("order %s ended CANCELED %s instead of COMPLETED", id, last.Reason)
			}
		}
		select {
		case <-ctx.Done():
			if err != nil && !errors.Is(err, ctx.Err()) {
				return fmt.Errorf("order %s is still %s: %w", id, status, err)
			}
			return fmt.Errorf("order %s is still %s (make status shows connectors and consumer lag): %w", id, status, ctx.Err())
		case <-time.After(o.Poll):
		}
	}
}

// expect sends body (JSON unless nil) with the Authorization header auth and decodes the answer
// into out (unless nil); any status but want is an error naming the request and the answer.
func (o *Orderer) expect(ctx context.Context, method, url, auth string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, url, err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s answered %d: %.300s", method, url, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode %.200s: %w", method, url, raw, err)
		}
	}
	return nil
}

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"outboxsaga.dev/messaging/debezium"
	"outboxsaga.dev/schemas"
	"outboxsaga.dev/stack"
	"outboxsaga.dev/tools/load"
)

// connectors are the Debezium connectors of the stack (one per saga service): invariant 7 wants
// every one RUNNING after any input.
func connectors() []string {
	var out []string
	for _, p := range stack.SagaServices() {
		out = append(out, p.Connector())
	}
	return out
}

// PipelineCheck is invariant 7 (DESIGN.md) checked after an input phase: every connector task
// RUNNING, and a plain order completing.
type PipelineCheck struct {
	After    string
	Problems []string
	// ProbeTook is how long the plain order took to complete.
	ProbeTook time.Duration
}

// pipelineWhole checks invariant 7 after the phase named after. Its probe order joins rec, so
// that the final check counts it like every other order.
func (r *Runner) pipelineWhole(ctx context.Context, rec *load.Record, after string) PipelineCheck {
	c := PipelineCheck{After: after}
	connect := debezium.NewClient(r.cfg.Endpoints.ConnectURL, r.cfg.Endpoints.ConnectRESTUser, r.cfg.Endpoints.ConnectRESTPassword)
	for _, name := range connectors() {
		s, err := connect.Status(ctx, name)
		switch {
		case err != nil:
			c.Problems = append(c.Problems, fmt.Sprintf("connector %s: %v", name, err))
		case !s.Running():
			c.Problems = append(c.Problems, fmt.Sprintf("connector %s is %s, task %s: %s", name, s.Connector.State, s.TaskState(), s.FirstTrace()))
		}
	}
	start := time.Now()
	r.mu.Lock()
	probed := len(r.probes)
	r.mu.Unlock()
	if err := r.probe(ctx, 90*time.Second); err != nil {
		c.Problems = append(c.Problems, err.Error())
	}
	c.ProbeTook = time.Since(start)
	r.mu.Lock()
	rec.Orders = append(rec.Orders, r.probes[probed:]...)
	r.mu.Unlock()
	r.logf("invariant 7 after %s: %d problems, a plain order completed in %s", after, len(c.Problems), c.ProbeTook.Round(time.Millisecond))
	return c
}

// extremeOrders makes valid orders at the edges of the input bounds, schema-aware: each is the
// data of an OrderCreated event that schemas.Generator made in its extreme mode (the longest
// customer ids and tokens in multi-byte characters, 50 lines, quantities of 10,000, prices of
// 10^12), as a client would send it. Their SKUs are priced and stocked first, so the saga runs every step
// (reservation, charge at the gateway, completion or compensation) with those values.
type extremeOrders struct {
	gen *schemas.Generator
	// placed are the ids of the accepted orders; each must reach a terminal status.
	placed []string
}

func newExtremeOrders(seed uint64) (*extremeOrders, error) {
	g, err := schemas.NewGenerator(seed)
	if err != nil {
		return nil, err
	}
	g.Extreme = true
	return &extremeOrders{gen: g}, nil
}

// stocking is what an extreme order needs set up first: its SKUs' list prices (in its currency)
// and stock.
type stocking struct {
	// customer places the order (its token's subject).
	customer string
	currency string
	qty      map[string]int64
	price    map[string]int64
}

// next returns a request body, and what to set up for it.
func (x *extremeOrders) next(tokens []string, pick func(int) int) (string, stocking, error) {
	raw, err := x.gen.Event("OrderCreated", 1)
	if err != nil {
		return "", stocking{}, err
	}
	var e struct {
		Data struct {
			CustomerID   string `json:"customerId"`
			PaymentToken string `json:"paymentToken"`
			Currency     string `json:"currency"`
			Items        []struct {
				SKU       string `json:"sku"`
				Qty       int64  `json:"qty"`
				UnitPrice int64  `json:"unitPrice"`
			} `json:"items"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		return "", stocking{}, err
	}
	d := e.Data
	// Half of them with a token the gateway knows, so that some complete; the rest with the
	// generator's (unknown to the gateway: declined, compensated).
	if pick(2) == 0 {
		d.PaymentToken = tokens[pick(len(tokens))]
	}
	st := stocking{customer: d.CustomerID, currency: d.Currency, qty: map[string]int64{}, price: map[string]int64{}}
	for _, it := range d.Items {
		st.qty[it.SKU], st.price[it.SKU] = it.Qty, it.UnitPrice
	}
	body, err := json.Marshal(d)
	return string(body), st, err
}

// place stocks and sends one extreme order; it returns a problem, or "".
func (x *extremeOrders) place(ctx context.Context, r *Runner) string {
	body, st, err := x.next([]string{"tok_ok", "tok_declined", "tok_flaky"}, r.rng.IntN)
	if err != nil {
		return "extreme order: " + err.Error()
	}
	eps := r.cfg.Endpoints
	for sku, qty := range st.qty {
		price := fmt.Sprintf(`{"unitPrice": %d, "currency": %q}`, st.price[sku], st.currency)
		if code, raw := send(ctx, http.MethodPut, eps.OrderURL+"/prices/"+sku, price, r.adminHeaders()); code != http.StatusOK {
			return fmt.Sprintf("price %s for an extreme order: %d %.200s", sku, code, raw)
		}
		if code, raw := send(ctx, http.MethodPut, eps.InventoryURL+"/stock/"+sku, fmt.Sprintf(`{"available": %d}`, qty), r.adminHeaders()); code != http.StatusOK {
			return fmt.Sprintf("stock %s for an extreme order: %d %.200s", sku, code, raw)
		}
	}
	auth, err := r.customers.Bearer(st.customer)
	if err != nil {
		return "extreme order: " + err.Error()
	}
	// A SKU an earlier extreme order sold out is on sale again only once the order service has
	// heard the StockReplenished that the PUT above emitted: until then it answers 409 sold_out,
	// the eventual consistency of issue 22 (docs/architecture.md). A refusal creates nothing, so
	// the same order is sent again while that event is on its way.
	code, raw := send(ctx, http.MethodPost, eps.OrderURL+"/orders", body, map[string]string{"Authorization": auth})
	for deadline := time.Now().Add(time.Minute); code == http.StatusConflict && bytes.Contains(raw, []byte(`"sold_out"`)) && time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		code, raw = send(ctx, http.MethodPost, eps.OrderURL+"/orders", body, map[string]string{"Authorization": auth})
	}
	var created struct {
		OrderID string `json:"orderId"`
	}
	if code != http.StatusAccepted || json.Unmarshal(raw, &created) != nil {
		return fmt.Sprintf("a valid extreme order was refused: %d %.300s (body %.300s)", code, raw, body)
	}
	x.placed = append(x.placed, created.OrderID)
	return ""
}

// awaitTerminal waits until every placed order is COMPLETED or CANCELED.
func (x *extremeOrders) awaitTerminal(ctx context.Context, r *Runner, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	pending := x.placed
	for len(pending) > 0 {
		var still []string
		for _, id := range pending {
			o, err := r.cfg.Endpoints.Order(ctx, id)
			if err != nil || (o.Status != "COMPLETED" && o.Status != "CANCELED") {
				still = append(still, id)
			}
		}
		pending = still
		if len(pending) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(pending) > 0 {
		return []string{fmt.Sprintf("%d of %d extreme orders not terminal after %s (e.g. %s)", len(pending), len(x.placed), timeout, pending[0])}
	}
	return nil
}

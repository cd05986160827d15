package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"outboxsaga.dev/tools/latency"
	"outboxsaga.dev/tools/stackenv"
)

// StepResult is what one open-loop step at a fixed rate measured.
type StepResult struct {
	// Rate is the offered rate, orders per second.
	Rate     float64
	Duration time.Duration
	Sent     int
	Accepted int // 202
	Rejected int // any other answer, or no answer
	// Skipped counts sends dropped because MaxInFlight requests were open already.
	Skipped   int
	Completed int // OrderCompleted seen
	Canceled  int // OrderCanceled seen
	Lost      int // accepted but no terminal event within the drain timeout
	// Throughput is terminal orders per second, from the first send to the last terminal event.
	Throughput float64
	// Latency is from the POST's 202 to the terminal event seen on order-events.
	Latency latency.Summary
	// Post is the POST's own latency (request sent → 202).
	Post  latency.Summary
	Start time.Time
	End   time.Time
	// Drained is how long the pipeline took, before the step, to finish the work of what ran
	// before it (consumer lag zero); the step starts only then.
	Drained time.Duration
	// Neighbours is the CPU processes outside the stack used during the step, in cores
	// (CPUWindow.Neighbours; -1: not measured). Above NeighbourLimit the step is Disturbed.
	Neighbours float64
	// Disturbed marks a step whose neighbours used more than NeighbourLimit even after its rerun;
	// Reruns counts the runs thrown away for that reason.
	Disturbed bool
	Reruns    int
}

// Load drives the order service's POST /orders open-loop and measures each order until its
// terminal event appears on order-events (through the Tracker).
type Load struct {
	OrderURL string
	Tracker  *Tracker
	SKUs     []string
	// MaxInFlight bounds the open requests (and goroutines); a send beyond it is skipped and
	// counted, so the offered rate is never silently lowered.
	MaxInFlight int
	// Drain is how long to wait after the last send for every accepted order's terminal event.
	Drain  time.Duration
	Client *http.Client
	// Customers mints the orders' customer tokens (stackenv.LoadCustomers); the orders are spread
	// over benchCustomers customers, so that no customer's request rate or open orders cap
	// (ORDER_CUSTOMER_RATE, ORDER_MAX_OPEN_ORDERS) paces the bench.
	Customers *stackenv.Customers
}

// benchCustomers is how many customers place the bench's orders (bench-0 … bench-999).
const benchCustomers = 1000

// NewHTTPClient returns a client whose pool keeps enough connections for open-loop load.
func NewHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 2048
	tr.MaxIdleConnsPerHost = 2048
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// sample is one order of a step.
type sample struct {
	id       string
	sent     time.Time
	accepted time.Time
	ok       bool
}

// Step sends orders at rate per second for d, at fixed instants (open loop: a slow answer does not
// delay the next send), then waits for every accepted order's terminal event.
func (l *Load) Step(ctx context.Context, rate float64, d time.Duration) (StepResult, error) {
	n := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	res := StepResult{Rate: rate, Duration: d}
	samples := make([]sample, n)
	sem := make(chan struct{}, l.MaxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	res.Start = start
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return res, fmt.Errorf("load step at %.0f/s: %w", rate, ctx.Err())
			}
		}
		select {
		case sem <- struct{}{}:
		default:
			res.Skipped++
			continue
		}
		res.Sent++
		wg.Go(func() {
			defer func() { <-sem }()
			samples[i] = l.post(ctx)
		})
	}
	wg.Wait()
	drainCtx, cancel := context.WithTimeout(ctx, l.Drain)
	defer cancel()
	var (
		latencies, posts []time.Duration
		last             time.Time
	)
	for _, s := range samples {
		if s.sent.IsZero() {
			continue // skipped
		}
		if !s.ok {
			res.Rejected++
			continue
		}
		res.Accepted++
		posts = append(posts, s.accepted.Sub(s.sent))
		seen, typ, err := l.Tracker.WaitTerminal(drainCtx, s.id)
		if err != nil {
			res.Lost++
			continue
		}
		if typ == "OrderCompleted" {
			res.Completed++
		} else {
			res.Canceled++
		}
		latencies = append(latencies, max(seen.Sub(s.accepted), 0))
		if seen.After(last) {
			last = seen
		}
	}
	res.Latency, res.Post = latency.Summarize(latencies), latency.Summarize(posts)
	res.End = last
	if !last.IsZero() {
		res.Throughput = float64(res.Completed+res.Canceled) / last.Sub(start).Seconds()
	}
	return res, nil
}

// orderRequest is the body of POST /orders.
type orderRequest struct {
	CustomerID   string      `json:"customerId"`
	Currency     string      `json:"currency"`
	PaymentToken string      `json:"paymentToken"`
	Items        []orderItem `json:"items"`
}

type orderItem struct {
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	UnitPrice int64  `json:"unitPrice"`
}

// post places one tok_ok order of one unit of a random SKU.
func (l *Load) post(ctx context.Context) sample {
	customer := fmt.Sprintf("bench-%d", rand.IntN(benchCustomers))
	body, _ := json.Marshal(orderRequest{
		CustomerID: customer, Currency: "KRW", PaymentToken: "tok_ok",
		Items: []orderItem{{SKU: l.SKUs[rand.IntN(len(l.SKUs))], Qty: 1, UnitPrice: unitPrice}},
	})
	s := sample{sent: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.OrderURL+"/orders", bytes.NewReader(body))
	if err != nil {
		return s
	}
	req.Header.Set("Content-Type", "application/json")
	if l.Customers != nil {
		auth, err := l.Customers.Bearer(customer)
		if err != nil {
			return s
		}
		req.Header.Set("Authorization", auth)
	}
	resp, err := l.Client.Do(req)
	if err != nil {
		return s
	}
	defer resp.Body.Close()
	var created struct {
		OrderID string `json:"orderId"`
	}
	err = json.NewDecoder(resp.Body).Decode(&created)
	_, _ = io.Copy(io.Discard, resp.Body)
	s.accepted = time.Now()
	if err != nil || resp.StatusCode != http.StatusAccepted || created.OrderID == "" {
		s.id = "-"
		return s
	}
	s.id, s.ok = created.OrderID, true
	return s
}

// unitPrice is the list price of every bench SKU (KRW), the price the orders were "shown".
const unitPrice = 15000

// SetStock prices every SKU (the order service's price list) and gives it ample stock (the
// inventory service), through their operator endpoints.
func SetStock(ctx context.Context, client *http.Client, orderURL, inventoryURL, adminToken string, skus []string) error {
	for _, sku := range skus {
		if err := put(ctx, client, orderURL+"/prices/"+sku, fmt.Sprintf(`{"unitPrice":%d,"currency":"KRW"}`, unitPrice), adminToken); err != nil {
			return fmt.Errorf("price %s: %w", sku, err)
		}
		if err := put(ctx, client, inventoryURL+"/stock/"+sku, `{"available":1000000000}`, adminToken); err != nil {
			return fmt.Errorf("stock %s: %w", sku, err)
		}
	}
	return nil
}

// put sends an operator's PUT and wants a 2xx.
func put(ctx context.Context, client *http.Client, url, body, adminToken string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if adminToken != "" {
		req.Header.Set("Authorization", "Bearer "+adminToken)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("PUT %s: %s", url, resp.Status)
	}
	return nil
}

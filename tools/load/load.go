// Package load places orders on the running pipeline over HTTP at a fixed rate (open loop)
// with a realistic mix of payment outcomes and stock shortages, and records every accepted
// order so that package invariant can check what became of it.
package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"outboxsaga.dev/tools/stackenv"
)

// Kind is one class of order in the mix.
type Kind string

// The kinds of order the generator places.
const (
	KindOK       Kind = "tok_ok"
	KindDeclined Kind = "tok_declined"
	KindFlaky    Kind = "tok_flaky"
	KindTimeout  Kind = "tok_timeout"
	KindScarce   Kind = "scarce" // tok_ok on a SKU that runs out
)

// Mix is the share (in percent) of each kind of order.
type Mix map[Kind]int

// DefaultMix is 85% tok_ok, 5% tok_declined, 4% tok_flaky, 1% tok_timeout and 5% for SKUs that run out.
func DefaultMix() Mix {
	return Mix{KindOK: 85, KindDeclined: 5, KindFlaky: 4, KindTimeout: 1, KindScarce: 5}
}

// pick draws a kind with the mix's weights.
func (m Mix) pick(r *rand.Rand) Kind {
	total := 0
	for _, w := range m {
		total += w
	}
	n := r.IntN(max(total, 1))
	for _, k := range []Kind{KindOK, KindDeclined, KindFlaky, KindTimeout, KindScarce} {
		if n < m[k] {
			return k
		}
		n -= m[k]
	}
	return KindOK
}

// Config says what to place, where, and how fast.
type Config struct {
	OrderURL     string
	InventoryURL string
	AdminToken   string
	// Customers mints the customer tokens the orders are placed with (stackenv.LoadCustomers).
	Customers *stackenv.Customers
	// Rate is orders per second (open loop: a ticker, not a response, paces the requests).
	Rate float64
	// Concurrency bounds the requests in flight; a tick that finds no free slot is counted as dropped.
	Concurrency int
	// Count and Duration bound the run; it stops at whichever comes first (0: no bound of that kind).
	Count    int
	Duration time.Duration
	Mix      Mix
	// Prefix names the run's SKUs (<prefix>-OK-n, <prefix>-SCARCE-n); a new one per run keeps runs apart.
	Prefix string
	// Progress, when set, gets a line of counts every ProgressEvery (default: every second).
	Progress      io.Writer
	ProgressEvery time.Duration
	// Seed makes the mix reproducible.
	Seed uint64
}

// Order is one accepted order as the generator placed it.
type Order struct {
	ID             string `json:"id"`
	IdempotencyKey string `json:"idempotencyKey"`
	// Customer placed the order: one of customers, drawn at random, so that no customer's request
	// rate or open orders cap (ORDER_CUSTOMER_RATE, ORDER_MAX_OPEN_ORDERS) paces the run.
	Customer   string    `json:"customer"`
	SKU        string    `json:"sku"`
	Qty        int       `json:"qty"`
	Amount     int64     `json:"amount"`
	Token      string    `json:"token"`
	AcceptedAt time.Time `json:"acceptedAt"`
}

// Record is what a run leaves for the checker: every accepted order and each SKU's initial stock.
type Record struct {
	Started  time.Time        `json:"started"`
	Finished time.Time        `json:"finished"`
	Stock    map[string]int64 `json:"stock"`
	Orders   []Order          `json:"orders"`
	Stats    Stats            `json:"stats"`
}

// Stats counts what happened to the requests.
type Stats struct {
	Sent     int64 `json:"sent"`
	Accepted int64 `json:"accepted"`
	Rejected int64 `json:"rejected"` // 4xx: a bug in the generator or the service
	// SoldOut counts the 409 sold_out answers: the order service knew the SKU was sold out (it
	// heard StockDepleted) and refused the order at once, as it must (issue 22). Not an error.
	SoldOut int64 `json:"soldOut"`
	Errors  int64 `json:"errors"`  // 5xx or connection errors after retries (a component was down)
	Dropped int64 `json:"dropped"` // ticks with no free concurrency slot
}

// Save writes the record as JSON.
func (r *Record) Save(path string) error {
	raw, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return fmt.Errorf("encode record: %w", err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		return fmt.Errorf("write record %s: %w", path, err)
	}
	return nil
}

// ReadRecord reads a record written by Save.
func ReadRecord(path string) (*Record, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read record %s: %w", path, err)
	}
	var r Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decode record %s: %w", path, err)
	}
	return &r, nil
}

// Merge adds other's orders and SKUs to r.
func (r *Record) Merge(other *Record) {
	if r.Stock == nil {
		r.Stock = map[string]int64{}
	}
	for k, v := range other.Stock {
		r.Stock[k] = v
	}
	r.Orders = append(r.Orders, other.Orders...)
	r.Stats.Sent += other.Stats.Sent
	r.Stats.Accepted += other.Stats.Accepted
	r.Stats.Rejected += other.Stats.Rejected
	r.Stats.SoldOut += other.Stats.SoldOut
	r.Stats.Errors += other.Stats.Errors
	r.Stats.Dropped += other.Stats.Dropped
	if r.Started.IsZero() || other.Started.Before(r.Started) {
		r.Started = other.Started
	}
	if other.Finished.After(r.Finished) {
		r.Finished = other.Finished
	}
}

// Stock levels of a run's SKUs: plenty for the normal ones, little for the scarce ones.
const (
	okSKUs       = 4
	scarceSKUs   = 2
	okStock      = 1_000_000
	scarceStock  = 5
	maxQty       = 3
	unitPriceKRW = 1000
	// customers is how many customers place the run's orders (load-000 … load-999).
	customers = 1000
)

// Generator places orders; build it with New.
type Generator struct {
	cfg    Config
	client *http.Client
	stats  struct{ sent, accepted, rejected, soldOut, errors, dropped atomic.Int64 }
	mu     sync.Mutex
	orders []Order
}

// New returns a generator for cfg, filling in defaults.
func New(cfg Config) *Generator {
	if cfg.Mix == nil {
		cfg.Mix = DefaultMix()
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 32
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 20
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "L" + strings.ToUpper(uuid.NewString()[:6])
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	return &Generator{cfg: cfg, client: &http.Client{Timeout: 5 * time.Second}}
}

// SKUs returns the run's SKUs and their initial stock.
func (g *Generator) SKUs() map[string]int64 {
	out := map[string]int64{}
	for i := range okSKUs {
		out[fmt.Sprintf("%s-OK-%d", g.cfg.Prefix, i)] = okStock
	}
	for i := range scarceSKUs {
		out[fmt.Sprintf("%s-SCARCE-%d", g.cfg.Prefix, i)] = scarceStock
	}
	return out
}

// Setup prices the run's SKUs at unitPriceKRW (PUT /prices/{sku} on the order service) and
// stocks them (PUT /stock/{sku}), retrying while a service is down.
func (g *Generator) Setup(ctx context.Context) error {
	for sku, n := range g.SKUs() {
		if err := g.put(ctx, g.cfg.OrderURL+"/prices/"+sku, fmt.Sprintf(`{"unitPrice": %d, "currency": "KRW"}`, unitPriceKRW)); err != nil {
			return fmt.Errorf("price %s: %w", sku, err)
		}
		if err := g.put(ctx, g.cfg.InventoryURL+"/stock/"+sku, fmt.Sprintf(`{"available": %d}`, n)); err != nil {
			return fmt.Errorf("stock %s: %w", sku, err)
		}
	}
	return nil
}

// put sends an operator's PUT, retrying for 30 s while the service is down.
func (g *Generator) put(ctx context.Context, url, body string) error {
	return retry(ctx, 30*time.Second, func() (bool, error) {
		code, raw, err := g.do(ctx, http.MethodPut, url, body, g.adminHeaders())
		if err != nil || code >= 500 {
			return true, fmt.Errorf("PUT %s: %d %s %v", url, code, raw, err)
		}
		if code != http.StatusOK {
			return false, fmt.Errorf("PUT %s: %d %s", url, code, raw)
		}
		return false, nil
	})
}

func (g *Generator) adminHeaders() map[string]string {
	if g.cfg.AdminToken == "" {
		return nil
	}
	return map[string]string{"Authorization": "Bearer " + g.cfg.AdminToken}
}

// Run stocks the SKUs, places orders until a bound is reached or ctx ends, waits for the
// requests in flight, and returns the record.
func (g *Generator) Run(ctx context.Context) (*Record, error) {
	started := time.Now()
	if err := g.Setup(ctx); err != nil {
		return nil, err
	}
	if g.cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.cfg.Duration)
		defer cancel()
	}
	stopProgress := g.progress(ctx)
	defer stopProgress()

	rng := rand.New(rand.NewPCG(g.cfg.Seed, 7))
	slots := make(chan struct{}, g.cfg.Concurrency)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / g.cfg.Rate))
	defer tick.Stop()
loop:
	for n := 0; g.cfg.Count == 0 || n < g.cfg.Count; n++ {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		req := g.draw(rng)
		select {
		case slots <- struct{}{}:
		default:
			g.stats.dropped.Add(1)
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			g.place(context.WithoutCancel(ctx), req)
		})
	}
	wg.Wait()
	rec := &Record{Started: started, Finished: time.Now(), Stock: g.SKUs(), Stats: g.Stats()}
	g.mu.Lock()
	rec.Orders = append([]Order(nil), g.orders...)
	g.mu.Unlock()
	return rec, nil
}

// Stats returns the counts so far.
func (g *Generator) Stats() Stats {
	return Stats{
		Sent: g.stats.sent.Load(), Accepted: g.stats.accepted.Load(), Rejected: g.stats.rejected.Load(),
		SoldOut: g.stats.soldOut.Load(), Errors: g.stats.errors.Load(), Dropped: g.stats.dropped.Load(),
	}
}

// draw picks the next order of the mix.
func (g *Generator) draw(rng *rand.Rand) Order {
	kind := g.cfg.Mix.pick(rng)
	o := Order{IdempotencyKey: uuid.NewString(), Customer: fmt.Sprintf("load-%03d", rng.IntN(customers)),
		Qty: 1 + rng.IntN(maxQty), Token: string(kind)}
	if kind == KindScarce {
		o.Token = string(KindOK)
		o.SKU = fmt.Sprintf("%s-SCARCE-%d", g.cfg.Prefix, rng.IntN(scarceSKUs))
	} else {
		o.SKU = fmt.Sprintf("%s-OK-%d", g.cfg.Prefix, rng.IntN(okSKUs))
	}
	o.Amount = int64(o.Qty) * unitPriceKRW
	return o
}

// errSoldOut is place's answer to a 409 sold_out: the order was refused, rightly.
var errSoldOut = errors.New("sold out")

// place posts one order with its Idempotency-Key, retrying 5xx and connection errors (safe:
// the same key returns the same order) for up to 20 s.
func (g *Generator) place(ctx context.Context, o Order) {
	body := fmt.Sprintf(`{"customerId":%q,"currency":"KRW","paymentToken":%q,"items":[{"sku":%q,"qty":%d,"unitPrice":%d}]}`,
		o.Customer, o.Token, o.SKU, o.Qty, unitPriceKRW)
	headers := map[string]string{"Idempotency-Key": o.IdempotencyKey}
	if g.cfg.Customers != nil {
		auth, err := g.cfg.Customers.Bearer(o.Customer)
		if err != nil {
			g.stats.errors.Add(1)
			return
		}
		headers["Authorization"] = auth
	}
	g.stats.sent.Add(1)
	var created struct {
		OrderID string `json:"orderId"`
	}
	err := retry(ctx, 20*time.Second, func() (bool, error) {
		code, raw, err := g.do(ctx, http.MethodPost, g.cfg.OrderURL+"/orders", body, headers)
		switch {
		case err != nil || code >= 500:
			return true, fmt.Errorf("POST /orders: %d %s %v", code, raw, err)
		case code == http.StatusConflict && bytes.Contains(raw, []byte(`"code":"sold_out"`)):
			return false, errSoldOut
		case code != http.StatusAccepted:
			g.stats.rejected.Add(1)
			return false, fmt.Errorf("POST /orders: %d %s", code, raw)
		}
		if err := json.Unmarshal(raw, &created); err != nil || created.OrderID == "" {
			return false, fmt.Errorf("POST /orders: answer %s: %v", raw, err)
		}
		return false, nil
	})
	if errors.Is(err, errSoldOut) {
		g.stats.soldOut.Add(1)
		return
	}
	if err != nil {
		g.stats.errors.Add(1)
		return
	}
	g.stats.accepted.Add(1)
	o.ID = created.OrderID
	o.AcceptedAt = time.Now()
	g.mu.Lock()
	g.orders = append(g.orders, o)
	g.mu.Unlock()
}

// do sends one request and returns the status and body.
func (g *Generator) do(ctx context.Context, method, url, body string, headers map[string]string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewBufferString(body))
	if err != nil {
		return 0, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := g.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return res.StatusCode, raw, err
}

// progress prints a line of counts every ProgressEvery until the returned stop is called.
func (g *Generator) progress(ctx context.Context) func() {
	if g.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		every := g.cfg.ProgressEvery
		if every <= 0 {
			every = time.Second
		}
		t := time.NewTicker(every)
		defer t.Stop()
		start, last := time.Now(), int64(0)
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			s := g.Stats()
			fmt.Fprintf(g.cfg.Progress, "load %5.0fs sent=%d accepted=%d errors=%d rejected=%d soldout=%d dropped=%d rate=%.0f/s\n",
				time.Since(start).Seconds(), s.Sent, s.Accepted, s.Errors, s.Rejected, s.SoldOut, s.Dropped, float64(s.Accepted-last)/every.Seconds())
			last = s.Accepted
		}
	}()
	return func() { close(done); <-stopped }
}

// errGaveUp marks a retry loop that ran out of time.
var errGaveUp = errors.New("gave up")

// retry runs f until it succeeds, says not to retry, or the time runs out.
func retry(ctx context.Context, budget time.Duration, f func() (again bool, err error)) error {
	deadline := time.Now().Add(budget)
	wait := 100 * time.Millisecond
	for {
		again, err := f()
		if err == nil || !again {
			return err
		}
		if time.Now().Add(wait).After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%w: %w", errGaveUp, err)
		}
		time.Sleep(wait)
		wait = min(wait*2, 2*time.Second)
	}
}

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"outboxsaga.dev/messaging/eventually"
)

// outageCustomer places the outage test's orders (its own customer: its open orders and request
// rate are nobody else's).
const outageCustomer = "U-catalog-outage"

// placed is one order of the outage test's load: what it bought and when it was accepted.
type placed struct {
	id  string
	sku string
	qty int
	at  time.Time
}

// load places orders at a steady rate from its own goroutine until stopped; it never fails the
// test itself (t.Fatal belongs to the test's goroutine): what went wrong is in errs.
type load struct {
	u      urls
	header map[string]string
	skus   []string
	price  int64

	mu     sync.Mutex
	orders []placed
	errs   []string

	stop chan struct{}
	done sync.WaitGroup
}

// run places one order every 1/rate seconds, each in its own goroutine, until l.stop closes.
func (l *load) run(rate float64) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
			l.done.Add(1)
			go func() {
				defer l.done.Done()
				l.place(l.skus[rand.IntN(len(l.skus))], 1+rand.IntN(3))
			}()
		}
	}
}

// place posts one order of qty units of sku and records it (or why it was not accepted).
func (l *load) place(sku string, qty int) {
	req := orderRequest{CustomerID: outageCustomer, Currency: "KRW", PaymentToken: "tok_ok",
		Items: []item{{SKU: sku, Qty: qty, UnitPrice: l.price}}}
	raw, err := json.Marshal(req)
	if err != nil {
		l.fail("marshal the order: %v", err)
		return
	}
	hr, err := http.NewRequest(http.MethodPost, l.u.order+"/orders", bytes.NewReader(raw))
	if err != nil {
		l.fail("new request: %v", err)
		return
	}
	hr.Header.Set("Content-Type", "application/json")
	for k, v := range l.header {
		hr.Header.Set(k, v)
	}
	resp, err := httpClient.Do(hr)
	if err != nil {
		l.fail("POST /orders: %v", err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var got struct {
		OrderID string `json:"orderId"`
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(body, &got) != nil || got.OrderID == "" {
		l.fail("POST /orders: %d %.300s", resp.StatusCode, body)
		return
	}
	l.mu.Lock()
	l.orders = append(l.orders, placed{id: got.OrderID, sku: sku, qty: qty, at: time.Now()})
	l.mu.Unlock()
}

func (l *load) fail(format string, args ...any) {
	l.mu.Lock()
	l.errs = append(l.errs, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

// snapshot returns the orders accepted so far.
func (l *load) snapshot() []placed {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.orders)
}

// allCompleted waits until every one of orders is terminal and fails t unless each is COMPLETED.
func allCompleted(t *testing.T, u urls, orders []placed, timeout time.Duration) {
	t.Helper()
	open := map[string]bool{}
	for _, o := range orders {
		open[o.id] = true
	}
	eventually.Holds(t, timeout, func() string {
		for id := range open {
			o := getOrder(t, u, id)
			switch o.Status {
			case "COMPLETED":
				delete(open, id)
			case "CANCELED":
				t.Fatalf("order %s ended CANCELED/%s, want COMPLETED (tok_ok, stock to spare)", id, o.Reason)
			}
		}
		if len(open) > 0 {
			return fmt.Sprintf("%d of %d orders not terminal yet", len(open), len(orders))
		}
		return ""
	})
}

// TestCatalogStoppedUnderLoad is issue 22's "the catalog stopped for a minute under load leaves
// every order completing and catches up". Orders keep coming at a steady rate; the catalog is
// stopped for CATALOG_OUTAGE (at least a minute for the issue: CATALOG_OUTAGE=60s); before it is
// started again, every order placed so far has COMPLETED without it (the catalog is off the
// saga's path); started again under the same load, it catches up from its group's offsets: each
// SKU's units sold equal the sum over the completed orders, counted once, and so do the days'
// rankings. It takes CATALOG_OUTAGE plus about a minute, so it runs only when CATALOG_OUTAGE is
// set (not in make test, whose TestCatalogDownLeavesOrdersCompleting stops the catalog for a few
// orders):
//
//	. scripts/lib.sh && ensure_secrets && cd services/e2e && \
//	  CATALOG_OUTAGE=60s go test -count=1 -v -run '^TestCatalogStoppedUnderLoad$' .
func TestCatalogStoppedUnderLoad(t *testing.T) {
	outage, err := time.ParseDuration(os.Getenv("CATALOG_OUTAGE"))
	if err != nil || outage <= 0 {
		t.Skip("a long test: set CATALOG_OUTAGE (e.g. 60s) to run it")
	}
	const (
		rate  = 5.0 // orders a second
		price = 700
		warm  = 5 * time.Second  // load before the stop
		after = 15 * time.Second // load after the restart, while the catalog catches up
	)
	u := stackURLs()
	l := &load{u: u, header: customerHeader(t, outageCustomer), price: price, stop: make(chan struct{})}
	for range 4 {
		l.skus = append(l.skus, pricedSKU(t, u, 1_000_000, price))
	}
	stopLoad := sync.OnceFunc(func() { close(l.stop); l.done.Wait() })
	loadFrom := time.Now()
	go l.run(rate)
	t.Cleanup(stopLoad)

	time.Sleep(warm)
	stoppedAt := time.Now()
	start := stopService(t, "catalog")
	time.Sleep(outage)
	// Still stopped: every order accepted so far completes without the catalog.
	during := l.snapshot()
	allCompleted(t, u, during, sagaTimeout+30*time.Second)
	completedDown := time.Since(stoppedAt)
	start() // returns once the catalog answers /healthz again
	upAt := time.Now()
	time.Sleep(after)
	stopLoad()
	loadFor := time.Since(loadFrom)
	if len(l.errs) > 0 {
		t.Fatalf("%d orders not accepted, first: %s", len(l.errs), l.errs[0])
	}
	all := l.snapshot()
	allCompleted(t, u, all, sagaTimeout+30*time.Second)
	var placedDown int
	for _, o := range all {
		if o.at.After(stoppedAt) && o.at.Before(upAt) {
			placedDown++
		}
	}

	want := map[string]int64{}
	for _, o := range all {
		want[o.sku] += int64(o.qty)
	}
	// The catalog caught up: units sold per SKU, then the rankings of the days around the load
	// (the catalog's zone is not ours: the sum over yesterday, today and tomorrow in UTC).
	eventually.Holds(t, 120*time.Second, func() string {
		for _, sku := range l.skus {
			var p product
			code, raw := call(t, http.MethodGet, u.catalog+"/products/"+sku, nil, nil, &p)
			if code != http.StatusOK || p.UnitsSold != want[sku] || p.SoldOut {
				return fmt.Sprintf("catalog product %s: %d %s, want %d units sold", sku, code, raw, want[sku])
			}
		}
		return ""
	})
	eventually.Holds(t, 30*time.Second, func() string {
		got := map[string]int64{}
		for _, d := range []time.Duration{-24 * time.Hour, 0, 24 * time.Hour} {
			day := stoppedAt.Add(d).UTC().Format("2006-01-02")
			var ranks []rank
			if code, raw := call(t, http.MethodGet, u.catalog+"/rankings/daily?limit=1000&date="+day, nil, nil, &ranks); code != http.StatusOK {
				return fmt.Sprintf("ranking of %s: %d %s", day, code, raw)
			}
			for _, r := range ranks {
				if _, ours := want[r.SKU]; ours {
					got[r.SKU] += r.Units
				}
			}
		}
		for _, sku := range l.skus {
			if got[sku] != want[sku] {
				return fmt.Sprintf("%s in the rankings: %d units, want %d", sku, got[sku], want[sku])
			}
		}
		return ""
	})
	caughtUp := time.Since(upAt)
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
	t.Logf("load: %d orders in %s (%.1f/s, asked %.0f/s), all COMPLETED. The catalog was down %s (stopped → healthy again); "+
		"%d orders were placed meanwhile; the %d placed before %s into the outage had all COMPLETED %s into it, the catalog still down. "+
		"Its units sold and rankings were exact when checked, %s after it was back (%s of it more load)",
		len(all), r(loadFor), float64(len(all))/loadFor.Seconds(), rate, r(upAt.Sub(stoppedAt)),
		placedDown, len(during), outage, r(completedDown), r(caughtUp), after)
}

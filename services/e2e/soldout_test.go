package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"outboxsaga.dev/messaging/eventually"
)

// product is the catalog's GET /products/{sku}.
type product struct {
	SKU       string     `json:"sku"`
	SoldOut   bool       `json:"soldOut"`
	SoldOutAt *time.Time `json:"soldOutAt"`
	UnitsSold int64      `json:"unitsSold"`
}

// rank is one line of the catalog's GET /rankings/daily.
type rank struct {
	Rank   int    `json:"rank"`
	SKU    string `json:"sku"`
	Units  int64  `json:"units"`
	Orders int64  `json:"orders"`
}

// TestSoldOutAndRanking is the README's walk-through (issue 22): a SKU sells out, the order
// service learns it from StockDepleted and answers 409 sold_out at once, the catalog shows it
// sold out; a restock lifts it (StockReplenished) and orders are placed again; the day's ranking
// counts the completed orders' units, never a canceled one.
func TestSoldOutAndRanking(t *testing.T) {
	u := stackURLs()
	cust := customerHeader(t, e2eCustomer)
	sku := pricedSKU(t, u, 3, 1000)
	line := func(qty int) item { return item{SKU: sku, Qty: qty, UnitPrice: 1000} }

	// Sell it out: 1 + 2 units, both complete; the second reservation takes available to 0.
	completedAt := time.Now()
	orderEnding(t, u, "tok_ok", "COMPLETED", line(1))
	orderEnding(t, u, "tok_ok", "COMPLETED", line(2))

	req := orderRequest{CustomerID: e2eCustomer, Currency: "KRW", PaymentToken: "tok_ok", Items: []item{line(1)}}
	eventually.Holds(t, 30*time.Second, func() string {
		code, raw := call(t, http.MethodPost, u.order+"/orders", req, cust, nil)
		if code == http.StatusConflict {
			var body map[string]string
			if err := json.Unmarshal(raw, &body); err != nil || body["code"] != "sold_out" || body["sku"] != sku {
				t.Fatalf("409 with %s, want code sold_out and sku %s", raw, sku)
			}
			return ""
		}
		if code == http.StatusAccepted {
			// The window before the order service heard: the saga ends OUT_OF_STOCK.
			var got struct{ OrderID string }
			_ = json.Unmarshal(raw, &got)
			if o := waitTerminal(t, u, got.OrderID, sagaTimeout); o.Reason != "OUT_OF_STOCK" {
				t.Fatalf("an order for a sold-out SKU ended %s/%s, want CANCELED/OUT_OF_STOCK", o.Status, o.Reason)
			}
		}
		return fmt.Sprintf("POST /orders for sold-out %s: %d %s", sku, code, raw)
	})
	eventually.Holds(t, 30*time.Second, func() string {
		var p product
		code, raw := call(t, http.MethodGet, u.catalog+"/products/"+sku, nil, nil, &p)
		if code != http.StatusOK || !p.SoldOut || p.SoldOutAt == nil || p.UnitsSold != 3 {
			return fmt.Sprintf("catalog product %s: %d %s, want sold out with 3 units sold", sku, code, raw)
		}
		return ""
	})

	// Restock: StockReplenished; orders are placed again. A declined one never counts.
	if code, raw := call(t, http.MethodPut, u.inventory+"/stock/"+sku, map[string]int64{"available": 5}, adminHeader(), nil); code != http.StatusOK {
		t.Fatalf("PUT /stock/%s: %d %s", sku, code, raw)
	}
	eventually.Holds(t, 30*time.Second, func() string {
		var p product
		if code, raw := call(t, http.MethodGet, u.catalog+"/products/"+sku, nil, nil, &p); code != http.StatusOK || p.SoldOut {
			return fmt.Sprintf("catalog product %s after the restock: %d %s", sku, code, raw)
		}
		return ""
	})
	var id string
	eventually.Holds(t, 30*time.Second, func() string {
		var got struct {
			OrderID string `json:"orderId"`
		}
		code, raw := call(t, http.MethodPost, u.order+"/orders", req, cust, &got)
		if code != http.StatusAccepted {
			return fmt.Sprintf("POST /orders after the restock: %d %s", code, raw)
		}
		id = got.OrderID
		return ""
	})
	if o := waitTerminal(t, u, id, sagaTimeout); o.Status != "COMPLETED" {
		t.Fatalf("the order after the restock ended %s/%s", o.Status, o.Reason)
	}
	orderEnding(t, u, "tok_declined", "CANCELED", line(4))

	// The day's ranking (the catalog's zone: ask for the days around now) has the SKU with 4
	// units in 3 orders; the canceled one is not there.
	days := map[string]bool{}
	for _, d := range []time.Duration{-24 * time.Hour, 0, 24 * time.Hour} {
		days[completedAt.Add(d).UTC().Format("2006-01-02")] = true
	}
	eventually.Holds(t, 30*time.Second, func() string {
		var units, orders int64
		for day := range days {
			var ranks []rank
			if code, raw := call(t, http.MethodGet, u.catalog+"/rankings/daily?limit=1000&date="+day, nil, nil, &ranks); code != http.StatusOK {
				return fmt.Sprintf("ranking of %s: %d %s", day, code, raw)
			}
			for _, r := range ranks {
				if r.SKU == sku {
					units, orders = units+r.Units, orders+r.Orders
				}
			}
		}
		if units != 4 || orders != 3 {
			return fmt.Sprintf("%s in the rankings: %d units in %d orders, want 4 in 3", sku, units, orders)
		}
		return ""
	})
}

// TestCatalogDownLeavesOrdersCompleting: the catalog is side work after the saga's commits. With
// it stopped, orders complete as before; started again, it catches up from its group's offsets
// and counts every one of them, once. (Sequential: it stops a program, before the parallel tests.)
func TestCatalogDownLeavesOrdersCompleting(t *testing.T) {
	u := stackURLs()
	sku := pricedSKU(t, u, 100, 500)
	start := stopService(t, "catalog")
	const n = 5
	for range n {
		orderEnding(t, u, "tok_ok", "COMPLETED", item{SKU: sku, Qty: 2, UnitPrice: 500})
	}
	start()
	eventually.Holds(t, 60*time.Second, func() string {
		var p product
		code, raw := call(t, http.MethodGet, u.catalog+"/products/"+sku, nil, nil, &p)
		if code != http.StatusOK || p.UnitsSold != 2*n || p.SoldOut {
			return fmt.Sprintf("catalog product %s after its restart: %d %s, want %d units sold", sku, code, raw, 2*n)
		}
		return ""
	})
}

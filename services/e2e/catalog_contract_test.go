package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"outboxsaga.dev/messaging/eventually"
)

// TestCatalogMatchesOpenAPI drives every operation of the catalog (schemas/openapi/catalog.yaml)
// through the answers DESIGN.md gives it ("Sold out and rankings") and checks each against the
// document: a product sold out (soldOutAt set) and one on sale again (soldOutAt null), 404 for a
// SKU never seen, 400 for one the inventory would not stock, the daily ranking with and without date and limit, [] for a day without sales,
// 400 naming date or limit, and the endpoints every saga service has.
func TestCatalogMatchesOpenAPI(t *testing.T) {
	u := stackURLs()
	c := newContract(t, u)
	admin := adminHeader()

	// A SKU of one unit, sold: StockDepleted makes it sold out in the catalog.
	sku := pricedSKU(t, u, 1, 1200)
	orderEnding(t, u, "tok_ok", "COMPLETED", item{SKU: sku, Qty: 1, UnitPrice: 1200})
	productIs := func(soldOut bool) {
		t.Helper()
		eventually.Holds(t, 30*time.Second, func() string {
			var p product
			code, raw := call(t, http.MethodGet, u.catalog+"/products/"+sku, nil, nil, &p)
			if code != http.StatusOK || p.SoldOut != soldOut || p.UnitsSold != 1 || (p.SoldOutAt != nil) != soldOut {
				return fmt.Sprintf("catalog product %s: %d %s, want soldOut %v with 1 unit sold", sku, code, raw, soldOut)
			}
			return ""
		})
		if code, raw := c.do(t, "catalog", http.MethodGet, u.catalog+"/products/"+sku, nil, nil); code != http.StatusOK {
			t.Errorf("GET /products/%s: %d %s", sku, code, raw)
		}
	}
	productIs(true)
	if code, raw := call(t, http.MethodPut, u.inventory+"/stock/"+sku, map[string]int64{"available": 3}, admin, nil); code != http.StatusOK {
		t.Fatalf("PUT /stock/%s: %d %s", sku, code, raw)
	}
	productIs(false) // StockReplenished: soldOutAt null

	for _, tc := range []struct {
		path  string
		want  int
		names string // what a 400 names
	}{
		{"/products/NEVER-SEEN-" + sku, http.StatusNotFound, ""},
		{"/products/%00", http.StatusBadRequest, "sku"}, // PostgreSQL cannot compare NUL: it was a 500
		{"/rankings/daily", http.StatusOK, ""},
		{"/rankings/daily?limit=1000&date=" + time.Now().UTC().Format("2006-01-02"), http.StatusOK, ""},
		{"/rankings/daily?date=2001-01-01", http.StatusOK, ""}, // no sales: []
		{"/rankings/daily?date=yesterday", http.StatusBadRequest, "date"},
		{"/rankings/daily?date=2026-02-30", http.StatusBadRequest, "date"},
		{"/rankings/daily?limit=0", http.StatusBadRequest, "limit"},
		{"/rankings/daily?limit=1001", http.StatusBadRequest, "limit"},
		{"/rankings/daily?limit=ten", http.StatusBadRequest, "limit"},
		{"/healthz", http.StatusOK, ""},
		{"/readyz", http.StatusOK, ""},
		{"/metrics", http.StatusOK, ""},
		{"/dead-letters?limit=3", http.StatusOK, ""},
	} {
		code, raw := c.do(t, "catalog", http.MethodGet, u.catalog+tc.path, nil, admin)
		if code != tc.want || !bytes.Contains(raw, []byte(tc.names)) {
			t.Errorf("GET %s: %d %.300s, want %d naming %q", tc.path, code, raw, tc.want, tc.names)
		}
	}
	if code, raw := call(t, http.MethodGet, u.catalog+"/rankings/daily?date=2001-01-01", nil, nil, nil); code != http.StatusOK || string(bytes.TrimSpace(raw)) != "[]" {
		t.Errorf("a day without sales: %d %q, want 200 []", code, raw)
	}
}

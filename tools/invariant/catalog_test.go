package invariant

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"outboxsaga.dev/tools/load"
	"outboxsaga.dev/tools/stackenv"
)

// fakeCatalog answers GET /products/{sku} from products (404 when absent) and GET
// /rankings/daily from ranking, whatever the date.
func fakeCatalog(t *testing.T, products map[string]ProductView, ranking []RankView) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasPrefix(r.URL.Path, "/products/"):
			p, ok := products[strings.TrimPrefix(r.URL.Path, "/products/")]
			if !ok {
				w.WriteHeader(http.StatusNotFound)
				_, _ = w.Write([]byte(`{"code":"not_found","error":"no"}`))
				return
			}
			_ = json.NewEncoder(w).Encode(p)
		case r.URL.Path == "/rankings/daily":
			_ = json.NewEncoder(w).Encode(ranking)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestCheckCatalog(t *testing.T) {
	t.Setenv("CATALOG_RANKING_TZ", "UTC")
	done := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	rec := &load.Record{Stock: map[string]int64{"A": 3, "B": 5}, Orders: []load.Order{
		{ID: "o1", SKU: "A", Qty: 2}, {ID: "o2", SKU: "A", Qty: 1}, {ID: "o3", SKU: "B", Qty: 1}, {ID: "o4", SKU: "B", Qty: 4},
	}}
	snap := &Snapshot{
		Orders: map[string]OrderView{
			"o1": {Status: "COMPLETED", UpdatedAt: done}, "o2": {Status: "COMPLETED", UpdatedAt: done},
			"o3": {Status: "COMPLETED", UpdatedAt: done}, "o4": {Status: "CANCELED", Reason: "PAYMENT_FAILED", UpdatedAt: done},
		},
		Stock: map[string]StockView{"A": {SKU: "A", Sold: 3}, "B": {SKU: "B", Available: 4, Sold: 1}},
	}
	good := map[string]ProductView{"A": {SKU: "A", SoldOut: true, UnitsSold: 3}, "B": {SKU: "B", UnitsSold: 1}}
	goodRanking := []RankView{{Rank: 1, SKU: "A", Units: 3, Orders: 2}, {Rank: 2, SKU: "OTHER", Units: 2, Orders: 1}, {Rank: 3, SKU: "B", Units: 1, Orders: 1}}
	tests := []struct {
		name     string
		products map[string]ProductView
		ranking  []RankView
		want     []string // substrings, one per violation
	}{
		{name: "agrees", products: good, ranking: goodRanking},
		{name: "a canceled order counted", products: map[string]ProductView{"A": good["A"], "B": {SKU: "B", UnitsSold: 5}}, ranking: goodRanking,
			want: []string{"B: catalog units sold 5"}},
		{name: "sold out missed", products: map[string]ProductView{"A": {SKU: "A", UnitsSold: 3}, "B": good["B"]}, ranking: goodRanking,
			want: []string{"A: catalog sold out false, inventory available 0"}},
		{name: "never heard of", products: map[string]ProductView{"A": good["A"]}, ranking: goodRanking,
			want: []string{"B: catalog units sold 0 (found false)"}},
		{name: "ranking off", products: good, ranking: []RankView{{Rank: 1, SKU: "A", Units: 3, Orders: 1}},
			want: []string{"2026-12-07: catalog ranking"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Checker{Endpoints: Endpoints{Env: stackenv.Env{ServiceURLs: map[string]string{"catalog": fakeCatalog(t, tt.products, tt.ranking)}}}}
			var got []string
			add := func(n int, subject, format string, args ...any) {
				got = append(got, subject+": "+strings.TrimSpace(fmt.Sprintf(format, args...)))
			}
			r := &Result{Checked: map[int]int{}}
			if err := c.checkCatalog(context.Background(), rec, snap, r, add); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("violations %q, want %d like %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("violation %q, want %q", got[i], w)
				}
			}
			if r.Checked[8] != 3 { // two SKUs, one day
				t.Errorf("checked %d, want 3", r.Checked[8])
			}
		})
	}
}

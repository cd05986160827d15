// Package httpapi serves the catalog service's own routes over HTTP (chi): a product's sold-out
// state and units sold, and a day's best sellers. Health, readiness, metrics, the recover policy
// and the dead-letter endpoints are the shared runtime's (messaging/service).
package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"outboxsaga.dev/catalog"
	msghttp "outboxsaga.dev/messaging/httpapi"
)

// Reader reads the read models; *postgres.Catalog implements it.
type Reader interface {
	Product(ctx context.Context, sku string) (catalog.Product, error)
	Ranking(ctx context.Context, day string, limit int) ([]catalog.Rank, error)
}

// Config is what the routes are built from.
type Config struct {
	Catalog Reader
	// Zone is the ranking's (RANKING_TZ): a request without date asks for today there.
	Zone *time.Location
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	Log zerolog.Logger
}

// Routes adds the catalog's routes to r: GET /products/{sku} →
// {"sku","soldOut","soldOutAt","unitsSold"} (404 for a SKU never seen, 400 for one the inventory
// would not stock), and GET
// /rankings/daily?date=YYYY-MM-DD&limit=N → [{"rank","sku","units","orders"}] (date: today in
// the ranking's zone when absent; limit 1 to 1000, 10 when absent; a bad one is a 400 naming the
// parameter; a day without sales is []).
func Routes(r chi.Router, cfg Config) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r.Get("/products/{sku}", func(w http.ResponseWriter, r *http.Request) {
		sku, err := catalog.ParseSKU(chi.URLParam(r, "sku"))
		if err != nil {
			msghttp.WriteError(w, r, cfg.Log, err)
			return
		}
		p, err := cfg.Catalog.Product(r.Context(), sku)
		if err != nil {
			msghttp.WriteError(w, r, cfg.Log, err)
			return
		}
		msghttp.WriteJSON(w, http.StatusOK, p)
	})
	r.Get("/rankings/daily", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		day := catalog.Day(cfg.Now(), cfg.Zone)
		if q.Has("date") {
			var err error
			if day, err = catalog.ParseDay(q.Get("date")); err != nil {
				msghttp.WriteError(w, r, cfg.Log, err)
				return
			}
		}
		limit := catalog.DefaultLimit
		if q.Has("limit") {
			var err error
			if limit, err = catalog.ParseLimit(q.Get("limit")); err != nil {
				msghttp.WriteError(w, r, cfg.Log, err)
				return
			}
		}
		ranks, err := cfg.Catalog.Ranking(r.Context(), day, limit)
		if err != nil {
			msghttp.WriteError(w, r, cfg.Log, err)
			return
		}
		msghttp.WriteJSON(w, http.StatusOK, ranks)
	})
}

// Package httpapi serves the inventory service over HTTP (chi): the stock endpoints, health,
// readiness and metrics.
package httpapi

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/inventory"
	"outboxsaga.dev/messaging/fault"
	shared "outboxsaga.dev/messaging/httpapi"
)

// StockStore reads and sets stock; *postgres.StockStore implements it.
type StockStore interface {
	Stock(ctx context.Context, sku string) (inventory.Stock, error)
	SetAvailable(ctx context.Context, sku string, n int64) (inventory.Stock, error)
}

// Config is what the handler needs besides the store.
type Config struct {
	// AdminToken guards the operator endpoints; empty leaves them open (local development).
	AdminToken string
	Log        zerolog.Logger
	// Gatherer is served at /metrics.
	Gatherer prometheus.Gatherer
	// Checks are the readiness probes of /readyz.
	Checks []shared.Check
}

// NewRouter returns the inventory routes. It is a chi.Router so that app can mount more
// operator routes on it (dead letters).
func NewRouter(store StockStore, cfg Config) chi.Router {
	h := &handler{store: store, log: cfg.Log}
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.NotFound(shared.NotFound(cfg.Log))
	r.MethodNotAllowed(shared.MethodNotAllowed(cfg.Log))
	shared.MountHealth(r, cfg.Gatherer, cfg.Checks...)

	r.Get("/stock/{sku}", h.getStock)
	r.With(shared.RequireAdmin(cfg.AdminToken, cfg.Log)).Put("/stock/{sku}", h.putStock)
	return r
}

type handler struct {
	store StockStore
	log   zerolog.Logger
}

// putStockBody is the body of PUT /stock/{sku}. Available is a pointer so that a missing field
// is told apart from 0.
type putStockBody struct {
	Available *int64 `json:"available"`
}

// putStock sets a SKU's available count (an operator restocking or correcting a count).
// Reserved and sold stay as they are, so PUT redefines the SKU's initial stock for invariant 2:
// initial = available + reserved + sold, with the new available.
func (h *handler) putStock(w http.ResponseWriter, r *http.Request) {
	sku := chi.URLParam(r, "sku")
	if err := inventory.ValidateSKU(sku); err != nil {
		shared.WriteError(w, r, h.log, err)
		return
	}
	var body putStockBody
	if err := shared.DecodeJSON(w, r, &body); err != nil {
		shared.WriteError(w, r, h.log, err)
		return
	}
	if body.Available == nil {
		shared.WriteError(w, r, h.log, fault.Errorf(fault.Invalid, `field "available" is required`))
		return
	}
	st, err := h.store.SetAvailable(r.Context(), sku, *body.Available)
	if err != nil {
		shared.WriteError(w, r, h.log, err)
		return
	}
	h.log.Info().Str("sku", sku).Int64("available", st.Available).Int64("reserved", st.Reserved).
		Int64("sold", st.Sold).Msg("stock set")
	shared.WriteJSON(w, http.StatusOK, st)
}

// getStock answers a SKU's counts.
func (h *handler) getStock(w http.ResponseWriter, r *http.Request) {
	sku := chi.URLParam(r, "sku")
	if err := inventory.ValidateSKU(sku); err != nil {
		shared.WriteError(w, r, h.log, err)
		return
	}
	st, err := h.store.Stock(r.Context(), sku)
	if err != nil {
		shared.WriteError(w, r, h.log, err)
		return
	}
	shared.WriteJSON(w, http.StatusOK, st)
}

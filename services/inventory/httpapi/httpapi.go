// Package httpapi serves the inventory service's own routes over HTTP (chi): reading a SKU's
// stock and, for operators, setting it. Health, readiness, metrics, the recover policy and the
// dead-letter endpoints are the shared runtime's (messaging/service).
package httpapi

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"outboxsaga.dev/inventory"
	"outboxsaga.dev/messaging/fault"
	msghttp "outboxsaga.dev/messaging/httpapi"
)

// StockStore reads and sets stock; *postgres.StockLevels implements it.
type StockStore interface {
	Get(ctx context.Context, sku string) (inventory.Stock, error)
	SetAvailable(ctx context.Context, sku string, n int64) (inventory.Stock, error)
}

// Config is what the routes are built from.
type Config struct {
	Stock StockStore
	// AdminToken guards PUT /stock/{sku}; empty leaves it open (local development).
	AdminToken string
	Log        zerolog.Logger
}

// Routes adds the inventory service's routes to r: GET /stock/{sku} and, behind the admin
// token, PUT /stock/{sku}. Its error is always nil (the routes register no metrics); it has the
// signature every service's Routes has.
func Routes(r chi.Router, cfg Config) {
	h := &handler{store: cfg.Stock, log: cfg.Log}
	r.Get("/stock/{sku}", h.getStock)
	r.With(msghttp.RequireAdmin(cfg.AdminToken, cfg.Log)).Put("/stock/{sku}", h.putStock)
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
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	var body putStockBody
	if err := msghttp.DecodeJSON(w, r, &body); err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	if body.Available == nil {
		msghttp.WriteError(w, r, h.log, fault.Errorf(fault.Invalid, `field "available" is required`))
		return
	}
	st, err := h.store.SetAvailable(r.Context(), sku, *body.Available)
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	h.log.Info().Str("sku", sku).Int64("available", st.Available).Int64("reserved", st.Reserved).
		Int64("sold", st.Sold).Msg("stock set")
	msghttp.WriteJSON(w, http.StatusOK, st)
}

// getStock answers a SKU's counts.
func (h *handler) getStock(w http.ResponseWriter, r *http.Request) {
	sku := chi.URLParam(r, "sku")
	if err := inventory.ValidateSKU(sku); err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	st, err := h.store.Get(r.Context(), sku)
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	msghttp.WriteJSON(w, http.StatusOK, st)
}

// Package httpapi serves the payment service's own route over HTTP (chi): GET /payments/{orderId}.
// Health, readiness, metrics, the operator endpoints and the JSON answers for unknown routes come
// from the shared runtime (messaging/service).
//
// The route takes a customer token (messaging/customer) or the operator token: a customer sees
// the payments of its own orders only, and another customer's answers 404, as a missing one does.
package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/customer"
	"outboxsaga.dev/messaging/fault"
	msghttp "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/payment"
)

// maxOrderIDLen bounds an order id in a path; order ids are UUIDs, so this is generous.
const maxOrderIDLen = 128

// Payments reads a payment as its caller may; *app.App implements it.
type Payments interface {
	Payment(ctx context.Context, caller customer.Caller, orderID string) (payment.Payment, error)
}

// Config is what the routes are built from.
type Config struct {
	// Payments is where the payments are read from (the use cases).
	Payments Payments
	// Customers checks customer tokens; nil admits operators only.
	Customers *customer.Verifier
	// AdminToken lets operators read any payment; empty: operators are not admitted.
	AdminToken string
	// Log takes the requests that fail on our side (5xx).
	Log zerolog.Logger
}

// Routes adds the payment service's routes to r: GET /payments/{orderId}.
func Routes(r chi.Router, cfg Config) {
	h := &handler{payments: cfg.Payments, log: cfg.Log}
	r.With(customer.RequireOrOperator(cfg.Customers, cfg.AdminToken, cfg.Log)).Get("/payments/{orderId}", h.get)
}

type handler struct {
	payments Payments
	log      zerolog.Logger
}

// paymentView is the JSON of GET /payments/{orderId}.
type paymentView struct {
	OrderID string `json:"orderId"`
	Status  string `json:"status"`
	Amount  int64  `json:"amount"`
	PgTxnID string `json:"pgTxnId"`
	Reason  string `json:"reason"`
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	// chi hands over the raw (still escaped) segment when the path has escapes.
	orderID, err := url.PathUnescape(chi.URLParam(r, "orderId"))
	// PostgreSQL cannot store NUL in text; no order id holds a control character.
	if err != nil || len(orderID) > maxOrderIDLen || !utf8.ValidString(orderID) || strings.ContainsFunc(orderID, unicode.IsControl) {
		msghttp.WriteError(w, r, h.log, fault.Errorf(fault.Invalid, "order id must be valid UTF-8 without control characters, of at most %d bytes", maxOrderIDLen))
		return
	}
	caller, _ := customer.FromContext(r.Context())
	p, err := h.payments.Payment(r.Context(), caller, orderID)
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	msghttp.WriteJSON(w, http.StatusOK, paymentView{
		OrderID: p.OrderID,
		Status:  string(p.Status),
		Amount:  p.Amount,
		PgTxnID: p.PgTxnID,
		Reason:  p.Reason,
	})
}

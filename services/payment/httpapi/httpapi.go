// Package httpapi serves the payment service over HTTP (chi): GET /payments/{orderId}, the health
// and metrics endpoints, and JSON errors for everything else.
package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/fault"
	msghttp "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/payment"
)

// maxOrderIDLen bounds an order id in a path; order ids are UUIDs, so this is generous.
const maxOrderIDLen = 128

// Payments reads payments; *postgres.Payments implements it.
type Payments interface {
	Get(ctx context.Context, orderID string) (payment.Payment, error)
}

// NewRouter returns the service's routes. Readiness runs checks; metrics are served from g.
// It returns the chi router so that app can mount more (operator endpoints).
func NewRouter(payments Payments, log zerolog.Logger, g prometheus.Gatherer, checks ...msghttp.Check) chi.Router {
	h := &handler{payments: payments, log: log}
	r := chi.NewRouter()
	r.NotFound(msghttp.NotFound(log))
	r.MethodNotAllowed(msghttp.MethodNotAllowed(log))
	msghttp.MountHealth(r, g, checks...)
	r.Get("/payments/{orderId}", h.get)
	return r
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
	p, err := h.payments.Get(r.Context(), orderID)
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

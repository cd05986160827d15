// Package httpapi serves the gateway simulator's ledger over HTTP: POST /charges,
// POST /charges/void and GET /charges, with the project's JSON bodies and errors, recover policy,
// health and metrics endpoints (messaging/httpapi). Like a real PSP's API, every /charges call
// must carry the merchant's secret (`Authorization: Bearer <secret>`); health and metrics do not.
package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"

	"outboxsaga.dev/gatewaysim"
	"outboxsaga.dev/messaging/fault"
	msghttp "outboxsaga.dev/messaging/httpapi"
)

// NewHandler returns the simulator's routes, GET /healthz, /readyz and /metrics. Every /charges
// route answers only a request that carries `Authorization: Bearer <secret>` (401
// {"code":"unauthorized"} otherwise); secret must not be empty: there is no open mode. Its
// metrics are registered on reg (registering them twice on one registry panics) and served from
// it.
func NewHandler(ledger *gatewaysim.Ledger, secret string, log zerolog.Logger, reg *prometheus.Registry) (http.Handler, error) {
	if secret == "" {
		return nil, errors.New("gateway simulator: the merchant secret is empty (GATEWAYSIM_MERCHANT_SECRET); it would take charges from anyone")
	}
	metrics := promauto.With(reg)
	h := &handler{
		ledger: ledger,
		log:    log,
		charges: metrics.NewCounterVec(prometheus.CounterOpts{
			Name: "gatewaysim_charges_total",
			Help: "Charge requests by token and outcome (approved, declined, replayed, conflict, unavailable, invalid, abandoned).",
		}, []string{"token", "outcome"}),
		voids: metrics.NewCounterVec(prometheus.CounterOpts{
			Name: "gatewaysim_voids_total",
			Help: "Void requests by outcome (voided, unchanged, placeholder, conflict).",
		}, []string{"outcome"}),
	}
	unauthorized := metrics.NewCounter(prometheus.CounterOpts{
		Name: "gatewaysim_unauthorized_total",
		Help: "Calls to /charges refused for a missing or wrong merchant secret.",
	})
	r := msghttp.NewRouter(log)
	msghttp.MountHealth(r, reg)
	r.Group(func(r chi.Router) {
		r.Use(requireMerchant(secret, unauthorized, log))
		r.Post("/charges", h.charge)
		r.Post("/charges/void", h.void)
		r.Get("/charges", h.list)
	})
	return logRequests(log)(r), nil
}

// requireMerchant lets through a request whose Authorization header is `Bearer <secret>`, and
// answers any other 401. The header is compared in constant time, over digests so that not even
// its length leaks.
func requireMerchant(secret string, refused prometheus.Counter, log zerolog.Logger) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte("Bearer " + secret))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
			if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				refused.Inc()
				log.Warn().Str("method", r.Method).Str("path", r.URL.Path).Str("remote", r.RemoteAddr).
					Bool("credential", r.Header.Get("Authorization") != "").Msg("merchant not authenticated")
				msghttp.WriteError(w, r, log, fault.Errorf(fault.Unauthorized, "send the merchant secret: Authorization: Bearer <secret>"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

type handler struct {
	ledger  *gatewaysim.Ledger
	log     zerolog.Logger
	charges *prometheus.CounterVec
	voids   *prometheus.CounterVec
}

// chargeReply is a charge, plus the decline code on a 402.
type chargeReply struct {
	gatewaysim.Charge
	Code string `json:"code,omitempty"`
}

func (h *handler) charge(w http.ResponseWriter, r *http.Request) {
	var req gatewaysim.ChargeRequest
	if err := msghttp.DecodeJSON(w, r, &req); err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	res, err := h.ledger.Charge(r.Context(), req)
	h.charges.WithLabelValues(tokenLabel(req.Token), chargeOutcome(res, err)).Inc()
	switch {
	case err != nil:
		msghttp.WriteError(w, r, h.log, err)
	case res.Replayed:
		msghttp.WriteJSON(w, http.StatusOK, chargeReply{Charge: res.Charge})
	case res.Charge.Status == gatewaysim.StatusDeclined:
		msghttp.WriteJSON(w, http.StatusPaymentRequired, chargeReply{Charge: res.Charge, Code: res.Charge.DeclineCode})
	default:
		msghttp.WriteJSON(w, http.StatusCreated, chargeReply{Charge: res.Charge})
	}
}

func (h *handler) void(w http.ResponseWriter, r *http.Request) {
	var req gatewaysim.VoidRequest
	if err := msghttp.DecodeJSON(w, r, &req); err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	res, err := h.ledger.Void(req)
	if gatewaysim.IsConflict(err) {
		h.voids.WithLabelValues("conflict").Inc()
	}
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	h.voids.WithLabelValues(string(res.Outcome)).Inc()
	msghttp.WriteJSON(w, http.StatusOK, res.Charge)
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	msghttp.WriteJSON(w, http.StatusOK, h.ledger.List(r.URL.Query().Get("orderId")))
}

// chargeOutcome is the outcome label of one charge request.
func chargeOutcome(res gatewaysim.ChargeResult, err error) string {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "abandoned" // the caller left, or the simulator stops, before the answer
	case errors.Is(err, gatewaysim.ErrUnavailable):
		return "unavailable"
	case gatewaysim.IsConflict(err):
		return "conflict"
	case err != nil:
		return "invalid"
	case res.Replayed:
		return "replayed"
	default:
		return strings.ToLower(string(res.Charge.Status))
	}
}

// tokenLabel keeps the label's cardinality bounded.
func tokenLabel(token string) string {
	switch token {
	case gatewaysim.TokenOK, gatewaysim.TokenDeclined, gatewaysim.TokenFlaky, gatewaysim.TokenTimeout:
		return token
	default:
		return "other"
	}
}

// logRequests logs one line per request.
func logRequests(log zerolog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r)
			log.Info().
				Str("method", r.Method).
				Str("path", r.URL.Path).
				Int("status", ww.Status()).
				Dur("duration", time.Since(start)).
				Msg("request")
		})
	}
}

// Package httpapi serves the gateway simulator's ledger over HTTP.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"outboxsaga.dev/gatewaysim"
)

// maxBodyBytes caps a request body.
const maxBodyBytes = 1 << 20

// NewHandler returns the simulator's routes. Metrics are registered on reg and
// served from it at /metrics.
func NewHandler(ledger *gatewaysim.Ledger, log zerolog.Logger, reg *prometheus.Registry) (http.Handler, error) {
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	h := &handler{ledger: ledger, metrics: m}

	r := chi.NewRouter()
	r.Use(middleware.Recoverer, logRequests(log))
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: "not found", Code: "NOT_FOUND"})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method not allowed", Code: "METHOD_NOT_ALLOWED"})
	})

	r.Post("/charges", h.charge)
	r.Post("/charges/void", h.void)
	r.Get("/charges", h.list)
	r.Get("/healthz", ok)
	r.Get("/readyz", ok)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return r, nil
}

type handler struct {
	ledger  *gatewaysim.Ledger
	metrics *metrics
}

type chargeBody struct {
	OrderID        string `json:"orderId"`
	IdempotencyKey string `json:"idempotencyKey"`
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	Token          string `json:"token"`
}

type voidBody struct {
	OrderID        string `json:"orderId"`
	IdempotencyKey string `json:"idempotencyKey"`
}

// chargeReply is a charge, plus the decline code on a 402.
type chargeReply struct {
	gatewaysim.Charge
	Code string `json:"code,omitempty"`
}

func (h *handler) charge(w http.ResponseWriter, r *http.Request) {
	var in chargeBody
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	res, err := h.ledger.Charge(r.Context(), gatewaysim.ChargeRequest(in))
	h.metrics.observeCharge(in.Token, res, err)
	if err != nil {
		writeError(w, err)
		return
	}

	switch {
	case res.Replayed:
		writeJSON(w, http.StatusOK, chargeReply{Charge: res.Charge})
	case res.Charge.Status == gatewaysim.StatusDeclined:
		writeJSON(w, http.StatusPaymentRequired, chargeReply{Charge: res.Charge, Code: res.Charge.DeclineCode})
	default:
		writeJSON(w, http.StatusCreated, chargeReply{Charge: res.Charge})
	}
}

func (h *handler) void(w http.ResponseWriter, r *http.Request) {
	var in voidBody
	if err := decode(w, r, &in); err != nil {
		writeError(w, err)
		return
	}
	res, err := h.ledger.Void(gatewaysim.VoidRequest(in))
	if err != nil {
		writeError(w, err)
		return
	}
	h.metrics.voids.WithLabelValues(string(res.Outcome)).Inc()
	writeJSON(w, http.StatusOK, res.Charge)
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.ledger.List(r.URL.Query().Get("orderId")))
}

func ok(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// errBadJSON marks a body that is not the expected JSON object.
var errBadJSON = errors.New("malformed JSON body")

// decode reads one JSON object into dst, rejecting unknown fields, trailing
// data and bodies over maxBodyBytes.
func decode(w http.ResponseWriter, r *http.Request, dst any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return fmt.Errorf("read body: %w", err)
		}
		return fmt.Errorf("%w: %w", errBadJSON, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after the object", errBadJSON)
	}
	return nil
}

type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// writeError is the one place that maps errors to HTTP statuses and codes.
func writeError(w http.ResponseWriter, err error) {
	var (
		invalid  *gatewaysim.ValidationError
		tooLarge *http.MaxBytesError
	)
	switch {
	case errors.As(err, &invalid):
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error(), Code: "INVALID_REQUEST"})
	case errors.Is(err, errBadJSON):
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error(), Code: "INVALID_JSON"})
	case errors.As(err, &tooLarge):
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: err.Error(), Code: "BODY_TOO_LARGE"})
	case errors.Is(err, gatewaysim.ErrUnavailable):
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: err.Error(), Code: "GATEWAY_UNAVAILABLE"})
	default:
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error", Code: "INTERNAL"})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // The client may be gone; nothing to do.
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

// Package httpapi serves the webhook sink over HTTP: POST to any path records a notification,
// GET /received lists what arrived, with the project's JSON errors, recover policy, health and
// metrics endpoints (messaging/httpapi).
package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/fault"
	msghttp "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/webhooksink"
)

// Bounds of GET /received?limit=N.
const (
	DefaultLimit = 10000
	MaxLimit     = 100000
)

// Config tunes the sink's answers.
type Config struct {
	// FailFirst makes the sink refuse the first FailFirst POSTs of every Idempotency-Key with
	// FailStatus (default 503), recording nothing: a webhook that fails, then recovers. 0: off.
	FailFirst  int
	FailStatus int
}

// NewHandler returns the sink's routes over store, GET /healthz, /readyz and /metrics. Its
// metrics are registered on reg (registering them twice on one registry panics) and served
// from it.
//
//	POST /<any path>           record the JSON body under its Idempotency-Key: 200 {"key","deliveries"}
//	GET  /received?orderId=&limit=   [{"key","deliveries","body"}], one per key, oldest first
//
// A POST without a valid Idempotency-Key or with a body that is not a JSON object is a 400 (415
// when it is not sent as application/json, 413 over 64 KiB) and is not recorded: it is counted
// (webhooksink_posts_total{outcome="invalid"}) and logged.
func NewHandler(store *webhooksink.Store, cfg Config, log zerolog.Logger, reg *prometheus.Registry) http.Handler {
	if cfg.FailStatus == 0 {
		cfg.FailStatus = http.StatusServiceUnavailable
	}
	h := &handler{store: store, cfg: cfg, log: log, refused: make(map[string]int),
		posts: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "webhooksink_posts_total",
			Help: "POSTs by outcome: new (a key's first), repeat (a key again), invalid (400s), refused (FailFirst), error.",
		}, []string{"outcome"})}
	r := msghttp.NewRouter(log)
	msghttp.MountHealth(r, reg)
	r.Get("/received", h.received)
	r.Post("/*", h.receive)
	return r
}

type handler struct {
	store *webhooksink.Store
	cfg   Config
	log   zerolog.Logger
	posts *prometheus.CounterVec

	mu      sync.Mutex
	refused map[string]int // POSTs refused per key under FailFirst
}

// receive records one POST.
func (h *handler) receive(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	var body json.RawMessage
	err := msghttp.DecodeJSON(w, r, &body)
	if err == nil {
		err = webhooksink.Check(key, body)
	}
	if err != nil {
		h.posts.WithLabelValues("invalid").Inc()
		h.log.Warn().Str("path", r.URL.Path).Str("error", fault.Message(err)).Msg("POST refused, not recorded")
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	if h.refuse(key) {
		h.posts.WithLabelValues("refused").Inc()
		msghttp.WriteJSON(w, h.cfg.FailStatus, map[string]string{"error": "failing on purpose (FailFirst)", "code": "refused"})
		return
	}
	e, err := h.store.Record(r.URL.Path, key, body)
	if err != nil {
		h.posts.WithLabelValues("error").Inc()
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	outcome := "new"
	if e.Deliveries > 1 {
		outcome = "repeat"
	}
	h.posts.WithLabelValues(outcome).Inc()
	h.log.Info().Str("path", r.URL.Path).Str("key", key).Int("deliveries", e.Deliveries).Msg("notification received")
	msghttp.WriteJSON(w, http.StatusOK, map[string]any{"key": e.Key, "deliveries": e.Deliveries})
}

// refuse reports whether this POST of key is one of its first FailFirst, and counts it.
func (h *handler) refuse(key string) bool {
	h.mu.Lock()
	n := h.refused[key]
	refuse := n < h.cfg.FailFirst
	if refuse {
		h.refused[key] = n + 1
	}
	h.mu.Unlock()
	return refuse
}

// received lists the entries of an order, or of every order.
func (h *handler) received(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := DefaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			msghttp.WriteError(w, r, h.log, fault.Errorf(fault.Invalid, "limit must be a whole number from 1 to %d", MaxLimit))
			return
		}
		limit = n
	}
	msghttp.WriteJSON(w, http.StatusOK, h.store.List(q.Get("orderId"), limit))
}

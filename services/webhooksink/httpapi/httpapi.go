// Package httpapi serves the webhook sink over HTTP: POST to any path records a notification
// signed with the Standard Webhooks scheme (messaging/webhooksig), GET /received lists what
// arrived to whoever holds the read token, with the project's JSON errors, recover policy,
// health and metrics endpoints (messaging/httpapi).
package httpapi

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/fault"
	msghttp "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/messaging/webhooksig"
	"outboxsaga.dev/webhooksink"
)

// Bounds of GET /received?limit=N.
const (
	DefaultLimit = 10000
	MaxLimit     = 100000
)

// Config tunes the sink's answers.
type Config struct {
	// Secret (`whsec_<base64>`, WEBHOOKSINK_SECRET) verifies every POST's signature: an
	// unsigned, badly signed or stale one (timestamp more than 5 minutes off) is answered 401
	// and not recorded. Required.
	Secret string
	// ReadToken (WEBHOOKSINK_READ_TOKEN) is what GET /received wants as
	// `Authorization: Bearer <token>` (401 otherwise). Required.
	ReadToken string
	// FailFirst makes the sink refuse the first FailFirst POSTs of every Idempotency-Key with
	// FailStatus (default 503), recording nothing: a webhook that fails, then recovers. 0: off.
	FailFirst  int
	FailStatus int
}

// NewHandler returns the sink's routes over store, GET /healthz, /readyz and /metrics. Its
// metrics are registered on reg (registering them twice on one registry panics) and served
// from it. It fails when cfg has no valid Secret or no ReadToken.
//
//	POST /<any path>           record the JSON body under its Idempotency-Key: 200 {"key","deliveries"}
//	GET  /received?orderId=&limit=   [{"key","deliveries","body"}], one per key, oldest first
//
// A POST whose signature does not verify is a 401 (counted as outcome="unsigned"); one without a
// valid Idempotency-Key or with a body that is not a JSON object is a 400 (415 when it is not
// sent as application/json, 413 over 64 KiB). Neither is recorded; both are counted and logged.
func NewHandler(store *webhooksink.Store, cfg Config, log zerolog.Logger, reg *prometheus.Registry) (http.Handler, error) {
	if cfg.FailStatus == 0 {
		cfg.FailStatus = http.StatusServiceUnavailable
	}
	verifier, err := webhooksig.NewVerifier(cfg.Secret)
	if err != nil {
		return nil, fmt.Errorf("webhook sink: WEBHOOKSINK_SECRET: %w", err)
	}
	if cfg.ReadToken == "" {
		return nil, errors.New("webhook sink: WEBHOOKSINK_READ_TOKEN is not set: GET /received would list every notification to anyone")
	}
	h := &handler{store: store, cfg: cfg, log: log, refused: make(map[string]int), verifier: verifier,
		readAuth: []byte("Bearer " + cfg.ReadToken),
		posts: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "webhooksink_posts_total",
			Help: "POSTs by outcome: new (a key's first), repeat (a key again), unsigned (401), invalid (400s), refused (FailFirst), error.",
		}, []string{"outcome"})}
	promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{Name: "webhooksink_keys", Help: "Idempotency-Keys the sink keeps."},
		func() float64 { return float64(store.Stats().Keys) })
	promauto.With(reg).NewCounterFunc(prometheus.CounterOpts{Name: "webhooksink_evicted_keys_total",
		Help: "Keys forgotten, oldest first, to keep at most WEBHOOKSINK_MAX_KEYS."},
		func() float64 { return float64(store.Stats().Evicted) })
	r := msghttp.NewRouter(log)
	msghttp.MountHealth(r, reg)
	r.Get("/received", h.received)
	r.Post("/*", h.receive)
	return r, nil
}

type handler struct {
	store *webhooksink.Store
	cfg   Config
	log   zerolog.Logger
	posts *prometheus.CounterVec
	// verifier checks the POSTs' signatures; readAuth is the Authorization GET /received wants.
	verifier *webhooksig.Verifier
	readAuth []byte

	mu      sync.Mutex
	refused map[string]int // POSTs refused per key under FailFirst
}

// receive records one POST.
func (h *handler) receive(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	body, err := readBody(w, r)
	if err == nil {
		if verr := h.verifier.Verify(r.Header, body); verr != nil {
			h.posts.WithLabelValues("unsigned").Inc()
			h.log.Warn().Str("path", r.URL.Path).Str("error", verr.Error()).Msg("POST refused, not recorded")
			msghttp.WriteError(w, r, h.log, fault.Reasoned(fault.Unauthorized, "bad_signature", "%s", verr.Error()))
			return
		}
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

// readBody reads a POST's raw body, the bytes its signature covers: 415 unless it is declared
// application/json, 413 over msghttp.MaxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, fault.Errorf(fault.MediaType, "the request body must be JSON, sent with Content-Type: application/json")
	}
	if r.ContentLength > msghttp.MaxBodyBytes {
		return nil, fault.Errorf(fault.TooLarge, "request body is over %d bytes", msghttp.MaxBodyBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, msghttp.MaxBodyBytes))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, fault.Errorf(fault.TooLarge, "request body is over %d bytes", msghttp.MaxBodyBytes)
	}
	if err != nil {
		return nil, fault.Errorf(fault.Invalid, "read the request body: %v", err)
	}
	return body, nil
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
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), h.readAuth) != 1 {
		msghttp.WriteError(w, r, h.log, fault.Errorf(fault.Unauthorized, "GET /received: send Authorization: Bearer <WEBHOOKSINK_READ_TOKEN>"))
		return
	}
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

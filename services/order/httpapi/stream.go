package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"outboxsaga.dev/messaging/customer"
	msghttp "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/order"
)

// The bounds of the status streams when Config leaves them zero.
const (
	DefaultMaxStreams     = 1000
	DefaultStreamLifetime = 10 * time.Minute
)

// streamRetryAfter is what a stream refused for want of a slot is told to wait.
const streamRetryAfter = 5 * time.Second

// streamLimit bounds the status streams of the process: at most cap(slots) open at once (one
// more is answered 503 too_many_streams with Retry-After), each ended after lifetime (a client
// that still wants one opens another, as EventSource does by itself).
type streamLimit struct {
	slots    chan struct{}
	lifetime time.Duration
}

// newStreamLimit makes the bounds of cfg (MaxStreams, StreamLifetime) and registers the gauge of
// open streams on cfg.Registry.
func newStreamLimit(cfg Config) *streamLimit {
	l := &streamLimit{slots: make(chan struct{}, cmpOr(cfg.MaxStreams, DefaultMaxStreams)),
		lifetime: cmpOr(cfg.StreamLifetime, DefaultStreamLifetime)}
	promauto.With(cfg.Registry).NewGaugeFunc(prometheus.GaugeOpts{Name: "order_status_streams_open",
		Help: "Status streams (GET /orders/{id}/stream) open now; at most ORDER_MAX_STREAMS."},
		func() float64 { return float64(len(l.slots)) })
	return l
}

// cmpOr is v, or def when v is not positive.
func cmpOr[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// wrap runs next in a slot of the limit, under a context that ends after the lifetime.
func (l *streamLimit) wrap(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case l.slots <- struct{}{}:
		default:
			// Answered here, not through WriteError: a full server is no error to log at each call.
			w.Header().Set("Retry-After", strconv.Itoa(int(streamRetryAfter/time.Second)))
			msghttp.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"code": "too_many_streams",
				"error": fmt.Sprintf("%d status streams are open, the most this server keeps: try again later", cap(l.slots))})
			return
		}
		defer func() { <-l.slots }()
		ctx, cancel := context.WithTimeout(r.Context(), l.lifetime)
		defer cancel()
		next(w, r.WithContext(ctx))
	}
}

// keepAlive is how often an idle stream sends an SSE comment, so that proxies and clients do
// not take a quiet stream for a dead one.
const keepAlive = 15 * time.Second

// stream answers GET /orders/{id}/stream with Server-Sent Events: `event: status` with the
// order's JSON at once, then again on each status change; the stream ends when the order is
// terminal, the client leaves, the server shuts down or the stream reaches its lifetime
// (streamLimit, which also caps how many are open).
//
// Changes arrive by Postgres LISTEN/NOTIFY (the Watcher): the transaction that changes a status
// also runs pg_notify, so a stream reads the row only when something happened, whatever the
// number of open streams, and sees a change as soon as it commits. Polling every stream's row
// would cost a query per stream per interval and add up to an interval of delay.
func (h *handler) stream(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	// Subscribe before the first read, so a change committed in between still wakes us.
	wake, stop := h.watcher.Subscribe(id)
	defer stop()
	caller, _ := customer.FromContext(r.Context())
	o, err := h.app.Order(r.Context(), caller, id)
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}

	rc := http.NewResponseController(w)
	// The server's write timeout is for ordinary requests; a stream lives as long as the saga.
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: pass events through unbuffered
	w.WriteHeader(http.StatusOK)
	log := h.log.With().Str("orderId", id.String()).Logger()
	if err := sendStatus(w, rc, o); err != nil {
		return
	}

	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for !o.Status.Terminal() {
		select {
		case <-r.Context().Done():
			return
		case <-h.closing:
			return
		case <-tick.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-wake:
			now, err := h.app.Order(r.Context(), caller, id)
			if err != nil {
				if r.Context().Err() == nil {
					log.Error().Err(err).Msg("status stream: read order")
				}
				return
			}
			if now.Status == o.Status {
				continue
			}
			o = now
			if err := sendStatus(w, rc, o); err != nil {
				return
			}
		}
	}
}

// sendStatus writes one `status` event with o's JSON and flushes it to the client.
func sendStatus(w io.Writer, rc *http.ResponseController, o order.Order) error {
	data, err := json.Marshal(viewOf(o))
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "event: status\ndata: %s\n\n", data); err != nil {
		return err
	}
	return rc.Flush()
}

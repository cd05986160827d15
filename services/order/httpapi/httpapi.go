// Package httpapi serves the order service over HTTP (chi): placing an order (idempotently),
// reading an order and its saga timeline, streaming its status (Server-Sent Events), and the
// health and metrics endpoints.
package httpapi

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	msghttp "outboxsaga.dev/messaging/httpapi"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/order"
	"outboxsaga.dev/order/postgres"
)

// maxIdempotencyKeyLen bounds the Idempotency-Key header (a UUID needs 36).
const maxIdempotencyKeyLen = 255

// Orders is what the API needs from the order repository; *postgres.Orders implements it.
type Orders interface {
	Insert(ctx context.Context, tx *sql.Tx, o order.Order, idem postgres.Idempotency) (bool, error)
	ByIdempotencyKey(ctx context.Context, tx *sql.Tx, key string) (uuid.UUID, string, error)
	Record(ctx context.Context, tx *sql.Tx, orderID uuid.UUID, entries ...order.TimelineEntry) error
	Get(ctx context.Context, id uuid.UUID) (order.Order, error)
	Timeline(ctx context.Context, id uuid.UUID) ([]order.TimelineEntry, error)
}

// Watcher wakes a status stream when its order's status may have changed;
// *postgres.StatusListener implements it.
type Watcher interface {
	Subscribe(id uuid.UUID) (<-chan struct{}, func())
}

// Config is what the routes are built from.
type Config struct {
	DB     *sql.DB // transactions of POST /orders
	Orders Orders
	// Outbox writes OrderCreated in the transaction that places the order.
	Outbox  *msgpg.Outbox
	Watcher Watcher
	// Deadline is how long a new order's saga may take before it is canceled with TIMEOUT.
	Deadline time.Duration
	Log      zerolog.Logger
	// Registry takes the API's metrics.
	Registry prometheus.Registerer
	// Closing is closed when the server starts shutting down: open status streams end then,
	// so that a graceful shutdown does not wait for sagas to finish. Nil never closes.
	Closing <-chan struct{}
}

// Routes adds the order service's routes to r: placing an order, reading it, its timeline and
// its status stream.
func Routes(r chi.Router, cfg Config) error {
	created := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orders_created_total",
		Help: "Orders placed (an idempotent replay of a request is not counted again).",
	})
	if err := cfg.Registry.Register(created); err != nil {
		return fmt.Errorf("register http metrics: %w", err)
	}
	h := &handler{
		db: cfg.DB, orders: cfg.Orders, outbox: cfg.Outbox, watcher: cfg.Watcher, deadline: cfg.Deadline,
		log: cfg.Log, created: created, closing: cfg.Closing,
	}
	r.Post("/orders", h.create)
	r.Get("/orders/{id}", h.get)
	r.Get("/orders/{id}/events", h.events)
	r.Get("/orders/{id}/stream", h.stream)
	return nil
}

type handler struct {
	db       *sql.DB
	orders   Orders
	outbox   *msgpg.Outbox
	watcher  Watcher
	deadline time.Duration
	log      zerolog.Logger
	created  prometheus.Counter
	closing  <-chan struct{}
}

// createRequest is the body of POST /orders.
type createRequest struct {
	CustomerID   string       `json:"customerId"`
	Currency     string       `json:"currency"`
	PaymentToken string       `json:"paymentToken"`
	Items        []order.Item `json:"items"`
}

// hash identifies the request's content whatever its formatting or field order: re-encoding the
// decoded struct is canonical.
func (req createRequest) hash() string {
	canonical, _ := json.Marshal(req) // plain strings and numbers: cannot fail
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}

// createdView is the answer of POST /orders.
type createdView struct {
	OrderID string `json:"orderId"`
	Status  string `json:"status"`
}

// orderView is the JSON of an order (GET /orders/{id} and the status stream).
type orderView struct {
	OrderID    string       `json:"orderId"`
	Status     string       `json:"status"`
	Reason     string       `json:"reason"`
	CustomerID string       `json:"customerId"`
	Items      []order.Item `json:"items"`
	Amount     int64        `json:"amount"`
	Currency   string       `json:"currency"`
	CreatedAt  time.Time    `json:"createdAt"`
	UpdatedAt  time.Time    `json:"updatedAt"`
}

func viewOf(o order.Order) orderView {
	return orderView{
		OrderID:    o.ID.String(),
		Status:     string(o.Status),
		Reason:     string(o.Reason),
		CustomerID: o.CustomerID,
		Items:      o.Items,
		Amount:     o.Amount,
		Currency:   o.Currency,
		CreatedAt:  o.CreatedAt,
		UpdatedAt:  o.UpdatedAt,
	}
}

// create places an order: the order, its items, its timeline entry and OrderCreated commit in
// one transaction. With an Idempotency-Key, a retry of the same request answers the order placed
// first (the same 202 body) and writes nothing; the same key with another request is a conflict.
func (h *handler) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := msghttp.DecodeJSON(w, r, &req); err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if err := checkIdempotencyKey(key); err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	o, e, err := order.New(uuid.New(), order.Draft{
		CustomerID:   req.CustomerID,
		Currency:     req.Currency,
		PaymentToken: req.PaymentToken,
		Items:        req.Items,
	}, time.Now().UTC(), h.deadline)
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	tp := requestTrace(r)
	o.TraceID = tp.TraceID()
	id, created, err := h.place(r.Context(), o, e, tp, postgres.Idempotency{Key: key, RequestHash: req.hash()})
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	if created.EventID != "" {
		h.created.Inc()
		h.log.Info().Str("orderId", id.String()).Str("eventId", created.EventID).Str("traceId", o.TraceID).
			Int64("amount", o.Amount).Str("currency", o.Currency).Msg("order placed")
	}
	w.Header().Set("Location", "/orders/"+id.String())
	msghttp.WriteJSON(w, http.StatusAccepted, createdView{OrderID: id.String(), Status: string(order.Pending)})
}

// place stores o and emits e in one transaction and returns o's id and the emitted envelope, or,
// when idem's key was used before for the same request, the id of that order and a zero
// envelope (and writes nothing).
func (h *handler) place(ctx context.Context, o order.Order, e messaging.Event, tp messaging.Traceparent, idem postgres.Idempotency) (uuid.UUID, messaging.Envelope, error) {
	id := o.ID
	var created messaging.Envelope
	err := msgpg.WithTx(ctx, h.db, func(tx *sql.Tx) error {
		inserted, err := h.orders.Insert(ctx, tx, o, idem)
		if err != nil {
			return err
		}
		if inserted {
			envs, err := h.outbox.Emit(ctx, tx, tp, order.AggregateType, o.ID.String(), order.EventVersion, e)
			if err != nil {
				return err
			}
			created = envs[0]
			return h.orders.Record(ctx, tx, o.ID, postgres.Emitted(envs)...)
		}
		// Insert waited for a concurrent first use of the key to commit, so the order is there.
		prev, prevHash, err := h.orders.ByIdempotencyKey(ctx, tx, idem.Key)
		if err != nil {
			return err
		}
		if prevHash != idem.RequestHash {
			return fault.Errorf(fault.Conflict,
				"Idempotency-Key %q was already used for a different request (order %s); send a new key for a new order", idem.Key, prev)
		}
		id = prev
		return nil
	})
	if err != nil {
		return uuid.Nil, messaging.Envelope{}, fmt.Errorf("place order: %w", err)
	}
	return id, created, nil
}

// checkIdempotencyKey accepts no key, or 1 to maxIdempotencyKeyLen printable ASCII characters.
func checkIdempotencyKey(key string) error {
	if len(key) > maxIdempotencyKeyLen {
		return fault.Errorf(fault.Invalid, "header Idempotency-Key must be at most %d characters", maxIdempotencyKeyLen)
	}
	for _, c := range []byte(key) {
		if c < 0x20 || c > 0x7e {
			return fault.Errorf(fault.Invalid, "header Idempotency-Key must hold printable ASCII characters only")
		}
	}
	return nil
}

// requestTrace continues the caller's trace (the traceparent header) or starts one.
func requestTrace(r *http.Request) messaging.Traceparent {
	if tp, err := messaging.ParseTraceparent(r.Header.Get("traceparent")); err == nil {
		return tp.Child()
	}
	return messaging.NewTraceparent()
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	o, err := h.orders.Get(r.Context(), id)
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	msghttp.WriteJSON(w, http.StatusOK, viewOf(o))
}

func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	timeline, err := h.orders.Timeline(r.Context(), id)
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	msghttp.WriteJSON(w, http.StatusOK, timeline)
}

// pathID returns the {id} of the path; one that is no UUID names no order (404).
func pathID(r *http.Request) (uuid.UUID, error) {
	raw := chi.URLParam(r, "id")
	id, err := uuid.Parse(raw)
	if err != nil || len(raw) != 36 {
		return uuid.Nil, fault.Errorf(fault.NotFound, "order %q not found", raw)
	}
	return id, nil
}

// Package httpapi serves the order service over HTTP (chi): placing an order (idempotently),
// reading an order and its saga timeline, streaming its status (Server-Sent Events), and the
// health and metrics endpoints.
//
// Placing an order and every read of one take a customer token (messaging/customer): the order's
// customer is the token's subject, and another customer's order answers 404, as a missing one
// does. Operators (the ADMIN_TOKEN) may read any order but place none. Each customer has a
// request rate and a cap on its open (PENDING) orders; over either, 429 with Retry-After.
package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/customer"
	"outboxsaga.dev/messaging/fault"
	msghttp "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/messaging/tracing"
	"outboxsaga.dev/order"
	"outboxsaga.dev/order/app"
)

// maxIdempotencyKeyLen bounds the Idempotency-Key header (a UUID needs 36).
const maxIdempotencyKeyLen = 255

// Watcher wakes a status stream when its order's status may have changed;
// *postgres.StatusListener implements it.
type Watcher interface {
	Subscribe(id uuid.UUID) (<-chan struct{}, func())
}

// Config is what the routes are built from.
type Config struct {
	// App runs the use cases the routes serve.
	App *app.App
	// AdminToken guards the operator endpoints (PUT /prices/{sku}); an operator may also read
	// any order.
	AdminToken string
	// Customers checks customer tokens; nil refuses every customer request (403).
	Customers *customer.Verifier
	// Rate limits each customer's requests; nil limits nothing.
	Rate *customer.Limiter
	// Watcher wakes the status streams; Log takes the errors the routes answer.
	Watcher Watcher
	Log     zerolog.Logger
	// Registry takes the API's metrics.
	Registry prometheus.Registerer
	// Closing is closed when the server starts shutting down: open status streams end then,
	// so that a graceful shutdown does not wait for sagas to finish. Nil never closes.
	Closing <-chan struct{}
	// MaxStreams caps the status streams open at once (one more: 503 with Retry-After);
	// StreamLifetime ends each after that long. 0: DefaultMaxStreams, DefaultStreamLifetime.
	MaxStreams     int
	StreamLifetime time.Duration
}

// Routes adds the order service's routes to r: placing an order, reading it, its timeline and
// its status stream, and the price list (setting a price is an operator's).
func Routes(r chi.Router, cfg Config) {
	created := promauto.With(cfg.Registry).NewCounter(prometheus.CounterOpts{Name: "orders_created_total",
		Help: "Orders placed (an idempotent replay of a request is not counted again)."})
	h := &handler{app: cfg.App, watcher: cfg.Watcher, log: cfg.Log, created: created, closing: cfg.Closing}
	limit := cfg.Rate.Middleware(cfg.Log)
	r.With(customer.Require(cfg.Customers, cfg.Log), limit).Post("/orders", h.create)
	r.Group(func(r chi.Router) {
		r.Use(customer.RequireOrOperator(cfg.Customers, cfg.AdminToken, cfg.Log), limit)
		r.Get("/orders/{id}", h.get)
		r.Get("/orders/{id}/events", h.timeline)
		r.Get("/orders/{id}/history", h.history)
		r.Get("/orders/{id}/stream", newStreamLimit(cfg).wrap(h.stream))
	})
	r.Get("/prices/{sku}", h.getPrice)
	r.With(msghttp.RequireAdmin(cfg.AdminToken, cfg.Log)).Put("/prices/{sku}", h.putPrice)
}

type handler struct {
	app     *app.App
	watcher Watcher
	log     zerolog.Logger
	created prometheus.Counter
	closing <-chan struct{}
}

// createRequest is the body of POST /orders; customerId may be left out (the token says it).
type createRequest struct {
	CustomerID   string        `json:"customerId"`
	Currency     string        `json:"currency"`
	PaymentToken string        `json:"paymentToken"`
	Items        []lineRequest `json:"items"`
	// Channel is where the order is placed (web, app, api); left out: api. Omitted from the
	// request hash when empty, so a retry of a request made before channels hashes the same.
	Channel string `json:"channel,omitempty"`
}

// lineRequest is one line of POST /orders; unitPrice is optional (what the client was shown).
type lineRequest struct {
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	UnitPrice *int64 `json:"unitPrice,omitempty"`
}

// draft is what the request asks for.
func (req createRequest) draft() order.Draft {
	d := order.Draft{CustomerID: req.CustomerID, Currency: req.Currency, PaymentToken: req.PaymentToken, Channel: order.Channel(req.Channel)}
	for _, l := range req.Items {
		d.Lines = append(d.Lines, order.Line{SKU: l.SKU, Qty: l.Qty, UnitPrice: l.UnitPrice})
	}
	return d
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
	Delivery   *string      `json:"delivery"` // null until the shipping service schedules one
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
		Delivery:   delivery(o.Delivery),
		CreatedAt:  o.CreatedAt,
		UpdatedAt:  o.UpdatedAt,
	}
}

// delivery is the JSON of an order's delivery status: null when there is none.
func delivery(d order.Delivery) *string {
	if d == order.DeliveryNone {
		return nil
	}
	s := string(d)
	return &s
}

// create places an order (app.PlaceOrder): 202 with the order's id, the same body for a replay
// of a request with the same Idempotency-Key. A body that leaves customerId out is the token's
// customer's.
func (h *handler) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := msghttp.DecodeJSON(w, r, &req); err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	caller, _ := customer.FromContext(r.Context())
	if req.CustomerID == "" {
		req.CustomerID = caller.Customer
	}
	key := r.Header.Get("Idempotency-Key")
	if err := checkIdempotencyKey(key); err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	placed, err := h.app.PlaceOrder(r.Context(), app.PlaceOrder{Caller: caller, Draft: req.draft(), Trace: requestTrace(r),
		Idempotency: order.Idempotency{Key: key, RequestHash: req.hash()}})
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	o := placed.Order
	if !placed.Replayed() {
		h.created.Inc()
		h.log.Info().Str("orderId", o.ID.String()).Str("eventId", placed.Created.EventID).Str("traceId", o.TraceID).
			Int64("amount", o.Amount).Str("currency", o.Currency).Msg("order placed")
	}
	w.Header().Set("Location", "/orders/"+o.ID.String())
	msghttp.WriteJSON(w, http.StatusAccepted, createdView{OrderID: o.ID.String(), Status: string(order.StatusPending)})
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

// requestTrace is the trace the order's events belong to: the request's span when tracing is on
// (it continues the caller's traceparent header, or starts the trace), else the caller's trace
// (the traceparent header) or a new one.
func requestTrace(r *http.Request) messaging.Traceparent {
	tp := messaging.NewTraceparent()
	if caller, err := messaging.ParseTraceparent(r.Header.Get("traceparent")); err == nil {
		tp = caller.Child()
	}
	return tracing.OutboxTraceparent(r.Context(), tp)
}

// get answers the order as it is, or with asOf as it was then.
func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	read(h, w, r, func(ctx context.Context, caller customer.Caller, id uuid.UUID) (orderView, error) {
		if !r.URL.Query().Has("asOf") {
			o, err := h.app.Order(ctx, caller, id)
			return viewOf(o), err
		}
		at, err := parseAsOf(r.URL.Query().Get("asOf"))
		if err != nil {
			return orderView{}, err
		}
		o, err := h.app.OrderAsOf(ctx, caller, id, at)
		return viewOf(o), err
	})
}

// timeline answers every event recorded for the order, emitted or consumed.
func (h *handler) timeline(w http.ResponseWriter, r *http.Request) { read(h, w, r, h.app.Timeline) }

// history answers the order's own events from the event store, in seq order, payment tokens
// redacted.
func (h *handler) history(w http.ResponseWriter, r *http.Request) { read(h, w, r, h.app.History) }

// read answers what query returns for the order of the path, as the caller may see it.
func read[T any](h *handler, w http.ResponseWriter, r *http.Request, query func(context.Context, customer.Caller, uuid.UUID) (T, error)) {
	id, err := pathID(r)
	var v T
	if err == nil {
		caller, _ := customer.FromContext(r.Context())
		v, err = query(r.Context(), caller, id)
	}
	answer(w, r, h.log, v, err)
}

// parseAsOf reads the asOf parameter: an RFC 3339 time (fractional seconds allowed).
func parseAsOf(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fault.Errorf(fault.Invalid, "asOf must be an RFC 3339 time such as 2026-12-07T12:00:00Z, got %q", excerpt(v))
	}
	return t, nil
}

// answer writes v as 200, or err through the one error mapping.
func answer(w http.ResponseWriter, r *http.Request, log zerolog.Logger, v any, err error) {
	if err != nil {
		msghttp.WriteError(w, r, log, err)
		return
	}
	msghttp.WriteJSON(w, http.StatusOK, v)
}

// excerpt shortens a client's value for an error message.
func excerpt(s string) string {
	if r := []rune(s); len(r) > 70 {
		return string(r[:70]) + "…"
	}
	return s
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

// priceBody is the body of PUT /prices/{sku}.
type priceBody struct {
	UnitPrice *int64 `json:"unitPrice"`
	Currency  string `json:"currency"`
}

// putPrice sets a SKU's price (an operator). Orders placed before keep the price they were placed at.
func (h *handler) putPrice(w http.ResponseWriter, r *http.Request) {
	var body priceBody
	err := msghttp.DecodeJSON(w, r, &body)
	if err == nil && body.UnitPrice == nil {
		err = fault.Errorf(fault.Invalid, `field "unitPrice" is required`)
	}
	var p order.Price
	if err == nil {
		p, err = h.app.SetPrice(r.Context(), order.Price{SKU: chi.URLParam(r, "sku"), UnitPrice: *body.UnitPrice, Currency: body.Currency})
	}
	if err == nil {
		h.log.Info().Str("sku", p.SKU).Int64("unitPrice", p.UnitPrice).Str("currency", p.Currency).Msg("price set")
	}
	answer(w, r, h.log, p, err)
}

// getPrice answers a SKU's price.
func (h *handler) getPrice(w http.ResponseWriter, r *http.Request) {
	p, err := h.app.Price(r.Context(), chi.URLParam(r, "sku"))
	answer(w, r, h.log, p, err)
}

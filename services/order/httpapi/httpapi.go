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
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
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
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/order"
	"outboxsaga.dev/order/postgres"
)

// maxIdempotencyKeyLen bounds the Idempotency-Key header (a UUID needs 36).
const maxIdempotencyKeyLen = 255

// TooManyOpenOrders is the code a customer sees when it has MaxOpenOrders orders PENDING (429).
const TooManyOpenOrders = "too_many_open_orders"

// openOrdersRetryAfter is the Retry-After of TooManyOpenOrders: a saga ends in well under a
// second when the pipeline is well, and by the saga deadline at worst.
const openOrdersRetryAfter = time.Second

// Orders is what the API needs from the order repository; *postgres.Orders implements it.
type Orders interface {
	Insert(ctx context.Context, tx *sql.Tx, o order.Order, idem postgres.Idempotency) (bool, error)
	ByIdempotencyKey(ctx context.Context, tx *sql.Tx, customer, key string) (uuid.UUID, string, error)
	OpenOrders(ctx context.Context, tx *sql.Tx, customer string) (int, error)
	CustomerOf(ctx context.Context, id uuid.UUID) (string, error)
	Record(ctx context.Context, tx *sql.Tx, orderID uuid.UUID, entries ...order.TimelineEntry) error
	Get(ctx context.Context, id uuid.UUID) (order.Order, error)
	Timeline(ctx context.Context, id uuid.UUID) ([]order.TimelineEntry, error)
}

// Events is the order's event store; *postgres.Events implements it.
type Events interface {
	Decide(before order.Order, tp messaging.Traceparent, e messaging.Event, version int, at time.Time, meta order.Meta) (postgres.Decided, error)
	Append(ctx context.Context, tx *sql.Tx, d postgres.Decided) error
	History(ctx context.Context, id uuid.UUID) ([]postgres.HistoryEntry, error)
	AsOf(ctx context.Context, id uuid.UUID, t time.Time) (order.Order, error)
}

// Prices is the price list; *postgres.Prices implements it.
type Prices interface {
	Of(ctx context.Context, tx *sql.Tx, skus []string) (map[string]order.Price, error)
	Get(ctx context.Context, sku string) (order.Price, error)
	Set(ctx context.Context, p order.Price) (order.Price, error)
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
	Prices Prices
	// AdminToken guards the operator endpoints (PUT /prices/{sku}); an operator may also read
	// any order.
	AdminToken string
	// Customers checks customer tokens; nil refuses every customer request (403).
	Customers *customer.Verifier
	// Rate limits each customer's requests; nil limits nothing.
	Rate *customer.Limiter
	// MaxOpenOrders caps a customer's PENDING orders: one more is refused with 429
	// too_many_open_orders. 0: no cap.
	MaxOpenOrders int
	// Events appends OrderCreated to the event store in the transaction that places the order,
	// and answers the order's history and past states.
	Events  Events
	Watcher Watcher
	// Deadline is how long a new order's saga may take before it is canceled with TIMEOUT.
	Deadline time.Duration
	Log      zerolog.Logger
	// Registry takes the API's metrics.
	Registry prometheus.Registerer
	// Closing is closed when the server starts shutting down: open status streams end then,
	// so that a graceful shutdown does not wait for sagas to finish. Nil never closes.
	Closing <-chan struct{}
	// MaxStreams caps the status streams open at once (one more: 503 with Retry-After);
	// StreamLifetime ends each after that long. 0: DefaultMaxStreams, DefaultStreamLifetime.
	MaxStreams     int
	StreamLifetime time.Duration
	// CreatedVersion is the version of OrderCreated written: 1 leaves the channel out (while
	// consumers that know only v1 run); 0: order.CreatedVersion.
	CreatedVersion int
}

// Routes adds the order service's routes to r: placing an order, reading it, its timeline and
// its status stream, and the price list (setting a price is an operator's).
func Routes(r chi.Router, cfg Config) {
	created := promauto.With(cfg.Registry).NewCounter(prometheus.CounterOpts{Name: "orders_created_total",
		Help: "Orders placed (an idempotent replay of a request is not counted again)."})
	h := &handler{
		db: cfg.DB, orders: cfg.Orders, prices: cfg.Prices, events: cfg.Events, watcher: cfg.Watcher, deadline: cfg.Deadline,
		log: cfg.Log, created: created, closing: cfg.Closing, maxOpen: cfg.MaxOpenOrders, createdVersion: cfg.CreatedVersion,
	}
	if h.createdVersion == 0 {
		h.createdVersion = order.CreatedVersion
	}
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
	db       *sql.DB
	orders   Orders
	prices   Prices
	events   Events
	watcher  Watcher
	deadline time.Duration
	log      zerolog.Logger
	created  prometheus.Counter
	closing  <-chan struct{}
	maxOpen  int
	// createdVersion is the OrderCreated version written.
	createdVersion int
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

// create places an order at the list prices: the order, its items, its timeline entry and
// OrderCreated commit in one transaction. With an Idempotency-Key, a retry of the same request by
// the same customer answers the order placed first (the same 202 body) and writes nothing; the
// same key with another request is a conflict that names no order. The customer is the token's
// subject: a body customerId that names another is refused (403).
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
	// The request as sent first (a body customerId out of bounds is a 400 naming the field),
	// then whose it is.
	d := req.draft()
	if err := d.Validate(); err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	if req.CustomerID != caller.Customer {
		msghttp.WriteError(w, r, h.log, fault.Errorf(fault.Forbidden, "customerId %q is not the customer of the token", excerpt(req.CustomerID)))
		return
	}
	tp := requestTrace(r)
	o, created, err := h.place(r.Context(), d, tp, postgres.Idempotency{Key: key, RequestHash: req.hash()})
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	if created.EventID != "" {
		h.created.Inc()
		h.log.Info().Str("orderId", o.ID.String()).Str("eventId", created.EventID).Str("traceId", o.TraceID).
			Int64("amount", o.Amount).Str("currency", o.Currency).Msg("order placed")
	}
	w.Header().Set("Location", "/orders/"+o.ID.String())
	msghttp.WriteJSON(w, http.StatusAccepted, createdView{OrderID: o.ID.String(), Status: string(order.StatusPending)})
}

// place prices d from the list and stores the order and its OrderCreated in one transaction; it
// returns the order and the emitted envelope. When d's customer used idem's key before for the
// same request, it returns that order (only its id is set) and a zero envelope, and writes
// nothing.
func (h *handler) place(ctx context.Context, d order.Draft, tp messaging.Traceparent, idem postgres.Idempotency) (order.Order, messaging.Envelope, error) {
	var (
		o       order.Order
		created messaging.Envelope
	)
	err := msgpg.WithTx(ctx, h.db, func(tx *sql.Tx) error {
		created = messaging.Envelope{}
		if idem.Key != "" {
			prev, hash, err := h.orders.ByIdempotencyKey(ctx, tx, d.CustomerID, idem.Key)
			if err == nil {
				o = order.Order{ID: prev}
				return sameRequest(hash, idem)
			}
			if fault.Code(err) != fault.NotFound {
				return err
			}
		}
		if err := h.underOpenCap(ctx, tx, d.CustomerID); err != nil {
			return err
		}
		prices, err := h.prices.Of(ctx, tx, d.SKUs())
		if err != nil {
			return err
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		placed, e, err := order.New(uuid.New(), d, prices, now, h.deadline)
		if err != nil {
			return err
		}
		if h.createdVersion == 1 {
			e = order.CreatedV1(e)
		}
		decided, err := h.events.Decide(order.Order{}, tp, e, h.createdVersion, now,
			order.Meta{DeadlineAt: placed.DeadlineAt, IdempotencyKey: idem.Key, RequestHash: idem.RequestHash})
		if err != nil {
			return err
		}
		o = decided.State
		inserted, err := h.orders.Insert(ctx, tx, o, idem)
		if err != nil {
			return err
		}
		if !inserted {
			// Insert waited for a concurrent first use of the key to commit: the order is there.
			prev, hash, err := h.orders.ByIdempotencyKey(ctx, tx, d.CustomerID, idem.Key)
			if err != nil {
				return err
			}
			o = order.Order{ID: prev}
			return sameRequest(hash, idem)
		}
		if err := h.events.Append(ctx, tx, decided); err != nil {
			return err
		}
		created = decided.Envelope
		return h.orders.Record(ctx, tx, o.ID, postgres.Emitted([]messaging.Envelope{created})...)
	})
	if err != nil {
		return order.Order{}, messaging.Envelope{}, fmt.Errorf("place order: %w", err)
	}
	return o, created, nil
}

// underOpenCap refuses a new order of a customer that has maxOpen orders PENDING (429). The count
// is taken under a per-customer lock held to the end of tx, so concurrent orders of one customer
// cannot pass the cap together.
func (h *handler) underOpenCap(ctx context.Context, tx *sql.Tx, customerID string) error {
	if h.maxOpen <= 0 {
		return nil
	}
	n, err := h.orders.OpenOrders(ctx, tx, customerID)
	if err != nil {
		return err
	}
	if n >= h.maxOpen {
		return fault.Limited(TooManyOpenOrders, openOrdersRetryAfter,
			"customer %q has %d orders in progress, the most allowed; try again when one has ended", excerpt(customerID), n)
	}
	return nil
}

// sameRequest reports whether a reused Idempotency-Key comes with the request it was first used
// for; the conflict names no order.
func sameRequest(hash string, idem postgres.Idempotency) error {
	if hash != idem.RequestHash {
		return fault.Errorf(fault.Conflict, "Idempotency-Key %q was already used for a different request; send a new key for a new order", idem.Key)
	}
	return nil
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
	var o order.Order
	if r.URL.Query().Has("asOf") {
		var at time.Time
		if at, err = parseAsOf(r.URL.Query().Get("asOf")); err == nil {
			o, err = h.events.AsOf(r.Context(), id, at)
		}
	} else {
		o, err = h.orders.Get(r.Context(), id)
	}
	if err == nil {
		err = readable(r, id, o.CustomerID)
	}
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	msghttp.WriteJSON(w, http.StatusOK, viewOf(o))
}

func (h *handler) timeline(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	owner, err := h.orders.CustomerOf(r.Context(), id)
	if err == nil {
		err = readable(r, id, owner)
	}
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

// parseAsOf reads the asOf parameter: an RFC 3339 time (fractional seconds allowed).
func parseAsOf(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fault.Errorf(fault.Invalid, "asOf must be an RFC 3339 time such as 2026-12-07T12:00:00Z, got %q", excerpt(v))
	}
	return t, nil
}

// history answers the order's own events from the event store, in seq order, payment tokens
// redacted.
func (h *handler) history(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	owner, err := h.orders.CustomerOf(r.Context(), id)
	if err == nil {
		err = readable(r, id, owner)
	}
	var events []postgres.HistoryEntry
	if err == nil {
		events, err = h.events.History(r.Context(), id)
	}
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	msghttp.WriteJSON(w, http.StatusOK, events)
}

// readable refuses the caller an order of another customer with the answer a missing order gets
// (404), so that order ids tell nobody else anything.
func readable(r *http.Request, id uuid.UUID, owner string) error {
	if c, _ := customer.FromContext(r.Context()); !c.Owns(owner) {
		return fault.Errorf(fault.NotFound, "order %s not found", id)
	}
	return nil
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
	if err := msghttp.DecodeJSON(w, r, &body); err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	if body.UnitPrice == nil {
		msghttp.WriteError(w, r, h.log, fault.Errorf(fault.Invalid, `field "unitPrice" is required`))
		return
	}
	p, err := h.prices.Set(r.Context(), order.Price{SKU: chi.URLParam(r, "sku"), UnitPrice: *body.UnitPrice, Currency: body.Currency})
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	h.log.Info().Str("sku", p.SKU).Int64("unitPrice", p.UnitPrice).Str("currency", p.Currency).Msg("price set")
	msghttp.WriteJSON(w, http.StatusOK, p)
}

// getPrice answers a SKU's price.
func (h *handler) getPrice(w http.ResponseWriter, r *http.Request) {
	sku := chi.URLParam(r, "sku")
	if err := order.ValidateSKU(sku); err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	p, err := h.prices.Get(r.Context(), sku)
	if err != nil {
		msghttp.WriteError(w, r, h.log, err)
		return
	}
	msghttp.WriteJSON(w, http.StatusOK, p)
}

package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/fault"
	msghttp "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/order"
)

// OrderLister lists the orders for operators; *postgres.OrderList implements it.
type OrderLister interface {
	List(ctx context.Context, f order.ListFilter) (order.ListPage, error)
}

// ListConfig is what the operators' list of orders is built from.
type ListConfig struct {
	Orders OrderLister
	// AdminToken guards the list: operators only.
	AdminToken string
	Log        zerolog.Logger
	// Now is the clock olderThan counts from; nil: time.Now.
	Now func() time.Time
}

// ListRoutes adds GET /orders, the operators' list of orders, to r: newest first, filtered by
// id, status, reason, olderThan (a Go duration or seconds), waiting (the step: inventory, payment,
// shipping), paged by limit and the cursor before (the previous page's next).
func ListRoutes(r chi.Router, cfg ListConfig) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	l := &lister{orders: cfg.Orders, log: cfg.Log, now: now}
	r.With(msghttp.RequireAdmin(cfg.AdminToken, cfg.Log)).Get("/orders", l.list)
}

type lister struct {
	orders OrderLister
	log    zerolog.Logger
	now    func() time.Time
}

// summaryView is one order of GET /orders.
type summaryView struct {
	OrderID    string    `json:"orderId"`
	Status     string    `json:"status"`
	Reason     string    `json:"reason"`
	CustomerID string    `json:"customerId"`
	Amount     int64     `json:"amount"`
	Currency   string    `json:"currency"`
	Delivery   *string   `json:"delivery"`
	Waiting    string    `json:"waiting"`
	TraceID    string    `json:"traceId"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
	DeadlineAt time.Time `json:"deadlineAt"`
}

// listView is the answer of GET /orders; next is empty on the last page.
type listView struct {
	Orders []summaryView `json:"orders"`
	Next   string        `json:"next"`
}

// list answers a page of orders.
func (l *lister) list(w http.ResponseWriter, r *http.Request) {
	f, err := parseListFilter(r, l.now())
	var page order.ListPage
	if err == nil {
		page, err = l.orders.List(r.Context(), f)
	}
	if err != nil {
		msghttp.WriteError(w, r, l.log, err)
		return
	}
	v := listView{Orders: make([]summaryView, 0, len(page.Orders)), Next: page.Next.String()}
	for _, s := range page.Orders {
		v.Orders = append(v.Orders, summaryView{
			OrderID: s.ID.String(), Status: string(s.Status), Reason: string(s.Reason), CustomerID: s.CustomerID,
			Amount: s.Amount, Currency: s.Currency, Delivery: delivery(s.Delivery), Waiting: string(s.Waiting),
			TraceID: s.TraceID, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, DeadlineAt: s.DeadlineAt,
		})
	}
	msghttp.WriteJSON(w, http.StatusOK, v)
}

// parseListFilter reads GET /orders's query.
func parseListFilter(r *http.Request, now time.Time) (order.ListFilter, error) {
	q := r.URL.Query()
	f := order.ListFilter{Status: order.Status(q.Get("status")), Reason: order.Reason(q.Get("reason")), Now: now}
	var err error
	if v := q.Get("id"); v != "" {
		if f.ID, err = uuid.Parse(v); err != nil || len(v) != 36 {
			return f, fault.Errorf(fault.Invalid, "id must be an order id (a UUID), got %q", excerpt(v))
		}
	}
	if v := q.Get("waiting"); v != "" {
		if f.Waiting, err = order.ParseStep(v); err != nil {
			return f, err
		}
	}
	if v := q.Get("olderThan"); v != "" {
		if f.OlderThan, err = parseAge(v); err != nil {
			return f, err
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 {
			return f, fault.Errorf(fault.Invalid, "limit must be 1 to %d, got %q", order.MaxListLimit, excerpt(v))
		}
	}
	if f.Before, err = order.ParseCursor(q.Get("before")); err != nil {
		return f, err
	}
	return f, f.Validate()
}

// parseAge reads an age: a Go duration (90s, 5m) or whole seconds.
func parseAge(v string) (time.Duration, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 && n < 1<<33 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fault.Errorf(fault.Invalid, "olderThan must be a duration such as 30s or 5m, got %q", excerpt(v))
	}
	return d, nil
}

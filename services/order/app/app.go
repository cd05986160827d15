// Package app is the order service's application layer: its use cases (place an order, apply an
// event another service emitted about one, cancel the orders whose saga deadline passed, set and
// read prices, read an order, its timeline and its history), each a method of App. The
// HTTP adapter (httpapi) and the saga steps (saga) decode what comes in, call one method and
// encode what it returns; the repositories (postgres) store what the methods decide.
//
// Every use case that changes an order decides through the domain (package order), writes the
// projection, then emits: the event is appended to the order's event store (which Debezium
// streams, so it is also the service's outbox) and recorded in the order's timeline, in the same
// transaction (emit).
package app

import (
	"context"
	"database/sql"
	"time"

	"github.com/google/uuid"

	"outboxsaga.dev/order"
)

// OrderRepository is the projection of the orders (one row per order, the fold of its events)
// and their timelines; postgres.Orders implements it. Writes run in the caller's transaction.
type OrderRepository interface {
	Insert(ctx context.Context, tx *sql.Tx, o order.Order, idem order.Idempotency) (bool, error)
	ByIdempotencyKey(ctx context.Context, tx *sql.Tx, customer, key string) (uuid.UUID, string, error)
	OpenOrders(ctx context.Context, tx *sql.Tx, customer string) (int, error)
	Lock(ctx context.Context, tx *sql.Tx, id uuid.UUID) (order.Order, error)
	LockExpired(ctx context.Context, tx *sql.Tx, now time.Time, limit int) ([]order.Order, error)
	Save(ctx context.Context, tx *sql.Tx, before, after order.Order) error
	Record(ctx context.Context, tx *sql.Tx, orderID uuid.UUID, entries ...order.TimelineEntry) error
	RecordIfExists(ctx context.Context, tx *sql.Tx, orderID uuid.UUID, entry order.TimelineEntry) (bool, error)
	Get(ctx context.Context, id uuid.UUID) (order.Order, error)
	CustomerOf(ctx context.Context, id uuid.UUID) (string, error)
	Timeline(ctx context.Context, id uuid.UUID) ([]order.TimelineEntry, error)
}

// EventStore is the order's event store; postgres.Events implements it.
type EventStore interface {
	Append(ctx context.Context, tx *sql.Tx, d order.Decided) error
	History(ctx context.Context, id uuid.UUID) ([]order.HistoryEntry, error)
	AsOf(ctx context.Context, id uuid.UUID, t time.Time) (order.Order, error)
	// Upcaster is what the store folds with; Decide folds with it too.
	Upcaster() order.Upcaster
}

// PriceList is the list prices, by SKU; postgres.Prices implements it.
type PriceList interface {
	Of(ctx context.Context, tx *sql.Tx, skus []string) (map[string]order.Price, error)
	Get(ctx context.Context, sku string) (order.Price, error)
	Set(ctx context.Context, p order.Price) (order.Price, error)
}

// Availability is what the order service knows of the SKUs the inventory sold out;
// postgres.Availability implements it. Both run in the caller's transaction.
type Availability interface {
	Set(ctx context.Context, tx *sql.Tx, sku string, soldOut bool, asOf time.Time) (bool, error)
	FirstSoldOut(ctx context.Context, tx *sql.Tx, skus []string) (string, bool, error)
}

// Config is what an App is made of.
type Config struct {
	DB     *sql.DB // the transactions of the use cases that do not run in a consumer's
	Orders OrderRepository
	Events EventStore
	Prices PriceList
	// Availability is the sold-out table; nil: no SKU is known sold out and no order is refused
	// for one (the saga alone tells, OUT_OF_STOCK).
	Availability Availability
	// Deadline is how long a new order's saga may take before it is canceled with TIMEOUT.
	Deadline time.Duration
	// MaxOpenOrders caps a customer's PENDING orders: one more is refused with 429
	// too_many_open_orders. 0: no cap.
	MaxOpenOrders int
	// CreatedVersion is the version of OrderCreated written: 1 leaves the channel out (while
	// consumers that know only v1 run); 0: order.CreatedVersion.
	CreatedVersion int
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// App runs the order service's use cases.
type App struct {
	db             *sql.DB
	orders         OrderRepository
	events         EventStore
	prices         PriceList
	availability   Availability
	deadline       time.Duration
	maxOpen        int
	createdVersion int
	now            func() time.Time
}

// New returns the application that cfg describes.
func New(cfg Config) *App {
	a := &App{
		db: cfg.DB, orders: cfg.Orders, events: cfg.Events, prices: cfg.Prices, availability: cfg.Availability, deadline: cfg.Deadline,
		maxOpen: cfg.MaxOpenOrders, createdVersion: cfg.CreatedVersion, now: cfg.Now,
	}
	if a.createdVersion == 0 {
		a.createdVersion = order.CreatedVersion
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a
}

// clock is the time a use case runs at, to the microsecond (as the database keeps it).
func (a *App) clock() time.Time {
	return a.now().UTC().Truncate(time.Microsecond)
}

// emit appends d, an event the order decided, to the event store and records it in the order's
// timeline, in tx: what every use case that emits does once it wrote the projection (the timeline
// row refers to the order's).
func (a *App) emit(ctx context.Context, tx *sql.Tx, d order.Decided) error {
	if err := a.events.Append(ctx, tx, d); err != nil {
		return err
	}
	return a.orders.Record(ctx, tx, d.State.ID, d.Entry())
}

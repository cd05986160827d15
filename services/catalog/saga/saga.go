// Package saga holds the catalog service's consumer steps: StockDepleted and StockReplenished
// from inventory-events, OrderCompleted from order-events, and the Router that lists them and
// the events of those topics the catalog knowingly ignores. It is side work after the saga's
// commits: nothing here emits, and nothing the core saga does waits for it.
//
// Every step runs in one transaction with the inbox check (messaging/postgres.Step), so a
// redelivered event changes nothing.
package saga

import (
	"context"
	"database/sql"

	"outboxsaga.dev/catalog"
	"outboxsaga.dev/catalog/app"
	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	msgpg "outboxsaga.dev/messaging/postgres"
)

// Topics are the topics the catalog service consumes.
var Topics = []string{messaging.TopicInventory, messaging.TopicOrder}

// Steps runs the catalog's steps against its database, through the use cases.
type Steps struct {
	saga *msgpg.Saga
	app  *app.App
}

// New returns the steps over db, deciding through a. The catalog emits no events of its own.
func New(db *sql.DB, a *app.App) *Steps {
	return &Steps{saga: &msgpg.Saga{DB: db}, app: a}
}

// Router returns the router of the catalog: the three events it follows, and every other type of
// its two topics ignored (an order's reservation, payment and cancellation do not move a read
// model: a canceled order never completed, so it never counted). Anything else is poison. The
// steps are database work alone, so they may run in a batch's transaction (HandleBatchable).
func (s *Steps) Router() *messaging.Router {
	r := messaging.NewRouter()
	r.Key(messaging.Keyed{Field: "orderId"}) // the stock events carry no orderId: keyed by SKU, checked in the step
	r.HandleBatchable("StockDepleted", 1, msgpg.Step(s.saga, s.StockDepleted))
	r.HandleBatchable("StockReplenished", 1, msgpg.Step(s.saga, s.StockReplenished))
	r.HandleBatchable("OrderCompleted", 1, msgpg.Step(s.saga, s.OrderCompleted))
	r.Ignore("OrderCreated", 2) // v2, the latest: a v1 arrives upcast (messaging/upcast)
	r.Ignore("OrderCanceled", 1)
	for _, t := range []string{"StockReserved", "StockReservationFailed", "StockReleased", "StockCommitted"} {
		r.Ignore(t, 1)
	}
	return r
}

// StockData is the data of StockDepleted and StockReplenished that the steps read.
type StockData struct {
	SKU string `json:"sku"`
}

// OrderCompletedData is the data of OrderCompleted v1 that the step reads.
type OrderCompletedData struct {
	OrderID string         `json:"orderId"`
	Items   []catalog.Item `json:"items"`
}

// StockDepleted marks the SKU sold out since the event's occurredAt (app.StockChanged).
func (s *Steps) StockDepleted(ctx context.Context, tx *sql.Tx, m *messaging.Message, d StockData) (msgpg.Result, error) {
	if err := keyedBySKU(m, d); err != nil {
		return msgpg.Result{}, err
	}
	return s.app.StockChanged(ctx, tx, d.SKU, true, m.OccurredAt)
}

// StockReplenished marks the SKU available again (app.StockChanged).
func (s *Steps) StockReplenished(ctx context.Context, tx *sql.Tx, m *messaging.Message, d StockData) (msgpg.Result, error) {
	if err := keyedBySKU(m, d); err != nil {
		return msgpg.Result{}, err
	}
	return s.app.StockChanged(ctx, tx, d.SKU, false, m.OccurredAt)
}

// OrderCompleted counts the order's units on the day it completed (app.OrderCompleted).
func (s *Steps) OrderCompleted(ctx context.Context, tx *sql.Tx, m *messaging.Message, d OrderCompletedData) (msgpg.Result, error) {
	return s.app.OrderCompleted(ctx, tx, d.OrderID, d.Items, m.OccurredAt)
}

// keyedBySKU refuses a stock event whose SKU is not its aggregate id (its Kafka key): it
// contradicts itself, and the order of one SKU's events holds only under its key.
func keyedBySKU(m *messaging.Message, d StockData) error {
	if d.SKU == "" || d.SKU != m.AggregateID {
		return fault.Errorf(fault.Invalid, "%s names sku %q under key %q", m.EventType, d.SKU, m.AggregateID)
	}
	return nil
}

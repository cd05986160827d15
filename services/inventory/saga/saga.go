// Package saga holds the inventory service's saga steps: one handler per order event it
// consumes from order-events (OrderCreated, OrderCanceled, OrderCompleted) and the Router that
// lists them.
//
// Every step runs in one transaction with the inbox check (messaging/postgres.Step):
// the event id, the reservation, the stock moves and the outbox rows commit together or not at
// all. The steps decode; the use cases (package app) decide through the domain and persist.
package saga

import (
	"context"
	"database/sql"

	"outboxsaga.dev/inventory"
	"outboxsaga.dev/inventory/app"
	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
)

// Topics are the topics the inventory service consumes.
var Topics = []string{messaging.TopicOrder}

// Steps runs the saga steps against the inventory database, through the use cases.
type Steps struct {
	saga *msgpg.Saga
	app  *app.App
}

// New returns the saga steps over db; their events go out through outbox, their decisions
// through a.
func New(db *sql.DB, outbox *msgpg.Outbox, a *app.App) *Steps {
	return &Steps{saga: &msgpg.Saga{DB: db, Outbox: outbox, AggregateType: inventory.AggregateType, Version: inventory.EventVersion}, app: a}
}

// Router returns the router of the inventory saga: exactly the three order events, keyed by
// orderId. Anything else on order-events is poison for this service (the Router dead-letters it).
// Every step is database work alone, so every one may run in a batch's transaction
// (HandleBatchable).
func (s *Steps) Router() *messaging.Router {
	r := messaging.NewRouter()
	r.Key(messaging.Keyed{Field: "orderId"})
	r.HandleBatchable("OrderCreated", 2, msgpg.Step(s.saga, s.OrderCreated)) // v2, the latest: a v1 arrives upcast (messaging/upcast)
	r.HandleBatchable("OrderCanceled", 1, msgpg.Step(s.saga, s.OrderCanceled))
	r.HandleBatchable("OrderCompleted", 1, msgpg.Step(s.saga, s.OrderCompleted))
	return r
}

// OrderCreated reserves the order's items (app.Reserve). An order the domain refuses is poison
// (fault.Invalid; the schema lets none through).
func (s *Steps) OrderCreated(ctx context.Context, tx *sql.Tx, m *messaging.Message, d OrderCreatedData) (msgpg.Result, error) {
	return s.emit(ctx, tx, m)(s.app.Reserve(ctx, tx, inventory.Order{ID: d.OrderID, Items: d.Items, Amount: d.Amount, Currency: d.Currency, PaymentToken: d.PaymentToken}))
}

// OrderCanceled releases the order's reservation (app.Release).
func (s *Steps) OrderCanceled(ctx context.Context, tx *sql.Tx, m *messaging.Message, d OrderCanceledData) (msgpg.Result, error) {
	return s.emit(ctx, tx, m)(s.app.Release(ctx, tx, d.OrderID, d.Items, d.Reason))
}

// OrderCompleted sells the order's reservation (app.Commit).
func (s *Steps) OrderCompleted(ctx context.Context, tx *sql.Tx, m *messaging.Message, d OrderCompletedData) (msgpg.Result, error) {
	return s.emit(ctx, tx, m)(s.app.Commit(ctx, tx, d.OrderID))
}

// emit returns what writes a use case's StockDepleted/StockReplenished events to the outbox in
// tx, each under its SKU as aggregate id (so one SKU's transitions keep their order on one
// partition), and hands on the rest of its result for the step to emit under the order's id.
func (s *Steps) emit(ctx context.Context, tx *sql.Tx, m *messaging.Message) func(app.Result, error) (msgpg.Result, error) {
	return func(r app.Result, err error) (msgpg.Result, error) {
		if err != nil {
			return msgpg.Result{}, err
		}
		for _, se := range r.Stock {
			if err := s.saga.Emit(ctx, tx, m, se.SKU, se.Event); err != nil {
				return msgpg.Result{}, err
			}
		}
		return r.Result, nil
	}
}

// OrderCreatedData is the data of OrderCreated v2 that the step reads.
type OrderCreatedData struct {
	OrderID      string           `json:"orderId"`
	CustomerID   string           `json:"customerId"`
	Items        []inventory.Item `json:"items"`
	Amount       int64            `json:"amount"`
	Currency     string           `json:"currency"`
	PaymentToken string           `json:"paymentToken"`
}

// OrderCanceledData is the data of OrderCanceled v1 that the step reads.
type OrderCanceledData struct {
	OrderID string           `json:"orderId"`
	Reason  string           `json:"reason"`
	Items   []inventory.Item `json:"items"`
}

// OrderCompletedData is the data of OrderCompleted v1 that the step reads.
type OrderCompletedData struct {
	OrderID  string           `json:"orderId"`
	Items    []inventory.Item `json:"items"`
	Amount   int64            `json:"amount"`
	Currency string           `json:"currency"`
}

// Package saga is the payment service's consumer side: one step per consumed event type, each
// decoding its event and calling its use case (package app), and the Router that lists them.
//
//	inventory-events StockReserved → charge the order (app.Pay)
//	order-events     OrderCanceled → void a charge, or remember the cancel (app.Cancel)
//	order-events     OrderCreated  → remember whose order it is (for GET /payments/{orderId})
package saga

import (
	"context"
	"database/sql"

	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/payment"
)

// Topics are the topics the payment service consumes.
var Topics = []string{messaging.TopicInventory, messaging.TopicOrder}

// Payer is the use cases the steps call; *app.App implements it.
type Payer interface {
	Pay(ctx context.Context, m *messaging.Message, t payment.Terms) error
	Cancel(ctx context.Context, m *messaging.Message, orderID, reason string) error
}

// Steps is the payment service's saga steps over its use cases.
type Steps struct {
	db  *sql.DB
	app Payer
}

// New returns the saga steps over db (where OrderCreated records whose order it is), paying and
// canceling through a.
func New(db *sql.DB, a Payer) *Steps { return &Steps{db: db, app: a} }

// Router returns the router of the events the payment service acts on, and of the ones on its
// topics that it knowingly skips, keyed by orderId. Anything else is poison (the Router
// dead-letters it). StockReserved and OrderCanceled call the gateway outside any transaction, so
// neither joins a batch (Handle, not HandleBatchable): each runs on its own.
func (s *Steps) Router() *messaging.Router {
	r := messaging.NewRouter()
	r.Key(messaging.Keyed{Field: "orderId"})
	r.Handle("StockReserved", 1, s.StockReserved)
	r.Handle("OrderCanceled", 1, s.OrderCanceled)

	r.Ignore("StockReservationFailed", 1) // the order is canceled; OrderCanceled follows
	r.Ignore("StockReleased", 1)
	r.Ignore("StockCommitted", 1)
	r.Ignore("StockDepleted", 1) // about a SKU, not an order
	r.Ignore("StockReplenished", 1)
	// OrderCreated v2, the latest (a v1 arrives upcast): whose order it is, for GET
	// /payments/{orderId}; it charges nothing (StockReserved carries the payment terms).
	r.HandleBatchable("OrderCreated", 2, msgpg.RememberCustomers(s.db))
	r.Ignore("OrderCompleted", 1)
	return r
}

// stockReserved is the data of StockReserved v1 that the payment step uses.
type stockReserved struct {
	OrderID      string `json:"orderId"`
	Amount       int64  `json:"amount"`
	Currency     string `json:"currency"`
	PaymentToken string `json:"paymentToken"`
}

// StockReserved charges the order (app.Pay) on the terms the event carries.
func (s *Steps) StockReserved(ctx context.Context, m *messaging.Message) error {
	var d stockReserved
	if err := m.DecodeData(&d); err != nil {
		return err
	}
	return s.app.Pay(ctx, m, payment.Terms{OrderID: d.OrderID, Amount: d.Amount, Currency: d.Currency, Token: d.PaymentToken})
}

// orderCanceled is the data of OrderCanceled v1 that the payment step uses.
type orderCanceled struct {
	OrderID string `json:"orderId"`
	Reason  string `json:"reason"`
}

// OrderCanceled compensates the payment of the canceled order (app.Cancel).
func (s *Steps) OrderCanceled(ctx context.Context, m *messaging.Message) error {
	var d orderCanceled
	if err := m.DecodeData(&d); err != nil {
		return err
	}
	return s.app.Cancel(ctx, m, d.OrderID, d.Reason)
}

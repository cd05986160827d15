package saga

import (
	"context"
	"database/sql"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/payment/postgres"
)

// OrderCreated records whose order it is, so that GET /payments/{orderId} answers only that
// customer (StockReserved, which starts the payment, does not say). It charges nothing.
func (s *Steps) OrderCreated(ctx context.Context, m *messaging.Message) error {
	var d struct {
		OrderID    string `json:"orderId"`
		CustomerID string `json:"customerId"`
	}
	if err := m.DecodeData(&d); err != nil {
		return err
	}
	err := msgpg.Transactional(s.db, func(ctx context.Context, tx *sql.Tx, _ *messaging.Message) error {
		return postgres.RememberCustomer(ctx, tx, d.OrderID, d.CustomerID)
	})(ctx, m)
	if err != nil {
		return err
	}
	zerolog.Ctx(ctx).Debug().Msg("customer of the order recorded")
	return nil
}

package saga

import (
	"context"
	"database/sql"

	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/shipping/postgres"
)

// OrderCreated records whose order it is, so that GET /deliveries/{orderId} answers only that
// customer (OrderCompleted, which schedules the delivery, does not say). It ships nothing.
func (s *Steps) OrderCreated(ctx context.Context, m *messaging.Message) error {
	var d struct {
		OrderID    string `json:"orderId"`
		CustomerID string `json:"customerId"`
	}
	if err := m.DecodeData(&d); err != nil {
		return err
	}
	return msgpg.Transactional(s.db, func(ctx context.Context, tx *sql.Tx, _ *messaging.Message) error {
		return postgres.RememberCustomer(ctx, tx, d.OrderID, d.CustomerID)
	})(ctx, m)
}

package saga

import (
	"context"

	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
)

// OrderCreated records whose order it is (msgpg.RememberCustomers), so that GET /payments/{orderId} answers only that
// customer (StockReserved, which starts the payment, does not say). It charges nothing.
func (s *Steps) OrderCreated(ctx context.Context, m *messaging.Message) error {
	return msgpg.RememberCustomers(s.db)(ctx, m)
}

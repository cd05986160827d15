package saga

import (
	"context"

	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
)

// OrderCreated records whose order it is (msgpg.RememberCustomers), so that GET /deliveries/{orderId} answers only that
// customer (OrderCompleted, which schedules the delivery, does not say). It ships nothing.
func (s *Steps) OrderCreated(ctx context.Context, m *messaging.Message) error {
	return msgpg.RememberCustomers(s.db)(ctx, m)
}

package postgres

import (
	"context"

	msgpg "outboxsaga.dev/messaging/postgres"
)

// CustomerOf returns the customer of order orderID, or "" when the service has not heard of it
// (msgpg.RememberCustomers records it from OrderCreated).
func (r *Payments) CustomerOf(ctx context.Context, orderID string) (string, error) {
	return msgpg.CustomerOf(ctx, r.db, orderID)
}

package postgres

import (
	"context"

	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/shipping"
)

// CustomerOf returns the customer of order orderID, or "" when the service has not heard of it
// (msgpg.RememberCustomers records it from OrderCreated) or orderID is no order id.
func (s *Deliveries) CustomerOf(ctx context.Context, orderID string) (string, error) {
	if shipping.ValidateOrderID(orderID) != nil {
		return "", nil
	}
	return msgpg.CustomerOf(ctx, s.db, orderID)
}

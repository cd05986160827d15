package app

import (
	"context"

	"outboxsaga.dev/messaging/customer"
	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/payment"
)

// Payment returns the payment of orderID as caller may read it: an operator any, a customer the
// payments of its own orders only. Another customer's payment is refused with the answer a
// missing one gets (a fault.NotFound).
func (s *App) Payment(ctx context.Context, caller customer.Caller, orderID string) (payment.Payment, error) {
	p, err := s.payments.Get(ctx, orderID)
	if err != nil {
		return payment.Payment{}, err
	}
	if caller.Operator {
		return p, nil
	}
	owner, err := s.payments.CustomerOf(ctx, orderID)
	if err != nil {
		return payment.Payment{}, err
	}
	if !caller.Owns(owner) {
		return payment.Payment{}, fault.Errorf(fault.NotFound, "no payment for order %s", orderID)
	}
	return p, nil
}

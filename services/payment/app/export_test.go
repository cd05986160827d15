package app

import (
	"context"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/payment"
)

// The stages of Pay, for the tests that stop a charge between two of them (a crash).

// Admit is Pay's step 1 (admit).
func (s *App) Admit(ctx context.Context, m *messaging.Message, t payment.Terms) (payment.Payment, bool, error) {
	return s.admit(ctx, m, t)
}

// Charge is Pay's step 2 (charge).
func (s *App) Charge(ctx context.Context, p payment.Payment) (payment.Outcome, error) {
	return s.charge(ctx, p)
}

// Settle is Pay's step 3 (settle).
func (s *App) Settle(ctx context.Context, m *messaging.Message, o payment.Outcome, orderID string) error {
	return s.settle(ctx, m, o, orderID)
}

package app

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/payment"
)

// Cancel compensates the payment of orderID, whose order m (an OrderCanceled) cancels for reason. Before any StockReserved it records
// the cancel (a later StockReserved then charges nothing); during the charge it leaves the cancel
// on the payment for StockReserved to act on; after an approval it voids the charge at the
// gateway and then records VOIDED, PaymentVoided and the inbox row in one transaction.
func (s *App) Cancel(ctx context.Context, m *messaging.Message, orderID, reason string) error {
	var recorded, authorized *payment.Payment
	_, void, err := s.begin(ctx, m, orderID, func(found *payment.Payment) (*payment.Payment, bool) {
		store, act := payment.Cancel(found, orderID)
		recorded, authorized = store, nil
		if act == payment.CancelVoid {
			authorized = found
		}
		return store, act == payment.CancelVoid // a void is marked processed together with its record
	})
	if err != nil {
		return fmt.Errorf("cancel payment of order %s: %w", orderID, err)
	}
	log := zerolog.Ctx(ctx)
	if void {
		log.Info().Str("reason", reason).Msg("order canceled after approval; voiding the charge")
		return s.void(ctx, m, *authorized, true)
	}
	if recorded != nil {
		if recorded.Status == payment.StatusCanceled {
			s.metrics.reached(payment.StatusCanceled)
		}
		log.Info().Str("reason", reason).Str("status", string(recorded.Status)).
			Bool("cancelRequested", recorded.CancelRequested).Msg("cancel recorded")
	}
	return nil
}

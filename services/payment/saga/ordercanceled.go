package saga

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/payment"
)

// orderCanceled is the data of OrderCanceled v1 that the payment step uses.
type orderCanceled struct {
	OrderID string `json:"orderId"`
	Reason  string `json:"reason"`
}

// OrderCanceled compensates the payment of a canceled order. Before any StockReserved it records
// the cancel (a later StockReserved then charges nothing); during the charge it leaves the cancel
// on the payment for StockReserved to act on; after an approval it voids the charge at the
// gateway and then records VOIDED, PaymentVoided and the inbox row in one transaction.
func (s *Steps) OrderCanceled(ctx context.Context, m *messaging.Message) error {
	var d orderCanceled
	if err := m.DecodeData(&d); err != nil {
		return err
	}
	var recorded, authorized *payment.Payment
	_, void, err := s.begin(ctx, m, d.OrderID, func(found *payment.Payment) (*payment.Payment, bool) {
		store, act := payment.Cancel(found, d.OrderID)
		recorded, authorized = store, nil
		if act == payment.CancelVoid {
			authorized = found
		}
		return store, act == payment.CancelVoid // a void is marked processed together with its record
	})
	if err != nil {
		return fmt.Errorf("cancel payment of order %s: %w", d.OrderID, err)
	}
	log := zerolog.Ctx(ctx)
	if void {
		log.Info().Str("reason", d.Reason).Msg("order canceled after approval; voiding the charge")
		return s.void(ctx, m, *authorized, true)
	}
	if recorded != nil {
		if recorded.Status == payment.StatusCanceled {
			s.metrics.reached(payment.StatusCanceled)
		}
		log.Info().Str("reason", d.Reason).Str("status", string(recorded.Status)).
			Bool("cancelRequested", recorded.CancelRequested).Msg("cancel recorded")
	}
	return nil
}

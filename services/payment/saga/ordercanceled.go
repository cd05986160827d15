package saga

import (
	"context"
	"database/sql"
	"fmt"

	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/payment"
	"outboxsaga.dev/payment/postgres"
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
func (h *Handlers) OrderCanceled(ctx context.Context, m *messaging.Message) error {
	var d orderCanceled
	if err := decodeData(m, &d); err != nil {
		return err
	}
	log := h.logger(m, d.OrderID)
	var (
		act      payment.CancelAction
		recorded *payment.Payment
	)
	err := msgpg.WithTx(ctx, h.db, func(tx *sql.Tx) error {
		act, recorded = payment.CancelDone, nil
		done, err := postgres.Processed(ctx, tx, m.EventID)
		if err != nil || done {
			return err
		}
		err = h.payments.Upsert(ctx, tx, d.OrderID, func(found *payment.Payment) (*payment.Payment, error) {
			var store *payment.Payment
			store, act = payment.Cancel(found, d.OrderID)
			recorded = store
			return store, nil
		})
		if err != nil || act == payment.CancelVoid {
			return err // a void is marked processed together with its record
		}
		_, err = msgpg.MarkProcessed(ctx, tx, m)
		return err
	})
	if err != nil {
		return fmt.Errorf("cancel payment of order %s: %w", d.OrderID, err)
	}
	if act == payment.CancelVoid {
		log.Info().Str("reason", d.Reason).Msg("order canceled after approval; voiding the charge")
		return h.void(ctx, log, m, d.OrderID, true)
	}
	if recorded != nil {
		if recorded.Status == payment.StatusCanceled {
			h.reached(payment.StatusCanceled)
		}
		log.Info().Str("reason", d.Reason).Str("status", string(recorded.Status)).
			Bool("cancelRequested", recorded.CancelRequested).Msg("cancel recorded")
	}
	return nil
}

package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/payment"
)

// Pay charges the order of t, the terms of m (a StockReserved). It cannot be one transaction, since the gateway call must not
// hold one open:
//
//  1. admit (tx): create the payment AUTHORIZING, or find that there is nothing to charge;
//  2. charge: call the gateway with the order's idempotency key (and void if its answer is lost,
//     or is not about this order's charge: then also alert an operator);
//  3. settle (tx): inbox row + AUTHORIZED or FAILED + PaymentAuthorized or PaymentFailed;
//  4. if the order was canceled meanwhile, void the approval.
//
// A crash anywhere redelivers the event: admit finds the payment AUTHORIZING and the gateway
// returns the charge it already made for the key, so nothing is charged twice (and a mismatch
// is met, and alerted on, again: the alert is stored once per event).
func (s *App) Pay(ctx context.Context, m *messaging.Message, t payment.Terms) error {
	p, charge, err := s.admit(ctx, m, t)
	if err != nil {
		return err
	}
	if charge {
		o, err := s.charge(ctx, p)
		if err != nil {
			return err
		}
		if o.Mismatch() {
			if err := s.alert(ctx, m, o.Err); err != nil {
				return err
			}
		}
		if err := s.settle(ctx, m, o, t.OrderID); err != nil {
			return err
		}
	}
	return s.voidIfCanceled(ctx, m, t.OrderID)
}

// admit is step 1: it stores the payment AUTHORIZING and reports that the gateway must be asked,
// or marks the event processed when there is nothing to charge (the event took effect before, the
// order was canceled first, or the payment already has its answer). It does not mark an event it
// lets through: settle does, together with the gateway's answer.
func (s *App) admit(ctx context.Context, m *messaging.Message, t payment.Terms) (payment.Payment, bool, error) {
	var p payment.Payment
	done, charge, err := s.begin(ctx, m, t.OrderID, func(found *payment.Payment) (*payment.Payment, bool) {
		store, charge := payment.Admit(found, t)
		if store != nil {
			p = *store
		} else {
			p = *found
		}
		return store, charge
	})
	if err != nil {
		return payment.Payment{}, false, fmt.Errorf("admit payment of order %s: %w", t.OrderID, err)
	}
	switch log := zerolog.Ctx(ctx); {
	case done:
		log.Info().Msg("event processed before; nothing to charge")
	case !charge:
		log.Info().Str("status", string(p.Status)).Msg("payment has its answer already; nothing to charge")
	}
	return p, charge, nil
}

// charge is step 2: it asks the gateway for p's money. When the gateway's answer is lost after
// every attempt, the money may have been taken all the same, so the key is voided before the
// failure is recorded; a void on a key without a charge leaves a placeholder that stops a late
// approval. If that void fails too, the error sends the event round again.
//
// An answer that is not about p's charge (payment.Outcome.Mismatch: the client checked it) is
// never an authorization: whatever the key holds is voided, so that the failed order keeps no
// approved charge, and the outcome is the mismatch (PaymentFailed GATEWAY_MISMATCH; the caller
// alerts). A void answer that does not match after a lost answer is a mismatch too. A 401 is an
// outage (messaging.Outage): nothing was charged, the event is retried until the secret is
// fixed.
func (s *App) charge(ctx context.Context, p payment.Payment) (payment.Outcome, error) {
	log := zerolog.Ctx(ctx)
	req := p.ChargeRequest()
	log.Info().Int64("amount", p.Amount).Str("currency", p.Currency).Str("idempotencyKey", req.IdempotencyKey).Msg("charging")
	res, err := s.gateway.Charge(ctx, req)
	if ctx.Err() != nil {
		return payment.Outcome{}, fmt.Errorf("charge order %s: %w", p.OrderID, ctx.Err())
	}
	if errors.Is(err, payment.ErrGatewayUnauthorized) {
		return payment.Outcome{}, s.gatewayError(ctx, fmt.Errorf("charge order %s: %w", p.OrderID, err))
	}
	o := payment.Outcome{Result: res, Err: err}
	switch {
	case o.Mismatch():
		log.Error().Err(err).Str("chargeId", res.ChargeID).Msg("gateway answer does not match the order; voiding the key")
		// The key's charge is not the order's: only its order, key and that it holds no money
		// can be checked (Amount 0).
		vreq := payment.VoidRequest{OrderID: p.OrderID, IdempotencyKey: req.IdempotencyKey}
		if _, verr := s.gateway.Void(ctx, vreq); verr != nil {
			if errors.Is(verr, payment.ErrGatewayMismatch) {
				// The alert says both: the charge's answer and the void's.
				return payment.Outcome{Result: res, Err: fmt.Errorf("%w; the void of the key failed too: %w", err, verr)}, nil
			}
			return payment.Outcome{}, s.gatewayError(ctx, fmt.Errorf("void mismatched charge of order %s: %w", p.OrderID, verr))
		}
		return o, nil
	case !o.Unknown():
		return o, nil
	}
	log.Warn().Err(err).Msg("gateway answer lost after all attempts; voiding the key before recording the failure")
	if _, verr := s.gateway.Void(ctx, p.VoidRequest()); verr != nil {
		if errors.Is(verr, payment.ErrGatewayMismatch) {
			log.Error().Err(verr).Msg("the void of an unanswered charge is not about the order's charge")
			return payment.Outcome{Err: fmt.Errorf("void unanswered charge of order %s: %w", p.OrderID, verr)}, nil
		}
		return payment.Outcome{}, s.gatewayError(ctx, fmt.Errorf("void unanswered charge of order %s: %w", p.OrderID, verr))
	}
	return o, nil
}

// settle is step 3: in one transaction, the inbox row, the gateway's answer on the payment and
// the event that announces it. An event processed meanwhile (a concurrent redelivery) changes
// nothing.
func (s *App) settle(ctx context.Context, m *messaging.Message, o payment.Outcome, orderID string) error {
	settled, events, err := s.record(ctx, m, orderID, true, func(p payment.Payment) (payment.Payment, []messaging.Event, error) {
		next, events := p.Settle(o)
		return next, events, nil
	})
	if err != nil {
		return fmt.Errorf("settle payment of order %s: %w", orderID, err)
	}
	if len(events) > 0 {
		zerolog.Ctx(ctx).Info().Str("status", string(settled.Status)).Str("reason", settled.Reason).
			Str("pgTxnId", settled.PgTxnID).Str("declineCode", o.Result.DeclineCode).Msg("payment settled")
	}
	return nil
}

// voidIfCanceled is step 4: an OrderCanceled that came while the charge was in flight left the
// cancel on the payment; an approval is given back now. It also runs for a redelivered event, so
// that a crash between settle and the void still ends with the money returned.
func (s *App) voidIfCanceled(ctx context.Context, m *messaging.Message, orderID string) error {
	p, err := s.payments.Get(ctx, orderID)
	if fault.Code(err) == fault.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if !p.VoidPending() {
		return nil
	}
	zerolog.Ctx(ctx).Info().Msg("order canceled during the charge; voiding the approval")
	return s.void(ctx, m, p, false)
}

// Package app holds the payment service's use cases, which its saga steps and its HTTP route
// call: charge an order whose stock is reserved (Pay, for StockReserved), compensate a canceled
// order's payment (Cancel, for OrderCanceled), and read a payment as its customer or an operator
// may (Payment).
//
// The two topics the saga reads are not ordered relative to each other, so either event may come
// first, or OrderCanceled may come while StockReserved's gateway call is in flight; the payment
// row's status and its cancel_requested flag make every order of arrival end the same way.
//
// A use case that calls the gateway cannot be one transaction (the call must not hold one open):
// it begins in one (begin: the inbox probe and the payment's first decision), calls the gateway,
// and records the answer in another (record: the inbox row, the payment and its events). See
// docs/architecture.md, "Decisions inside the services".
//
// The gateway client checks every answer against the order (payment.ErrGatewayMismatch); a
// mismatch is never an authorization: the payment fails with GATEWAY_MISMATCH and an operator is
// alerted through the dead letters (Alerts). A 401 (payment.ErrGatewayUnauthorized) is an outage:
// the message is retried, never dead-lettered, and logged as an error on every attempt.
package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/payment"
	"outboxsaga.dev/payment/postgres"
)

// Payments is where the use cases keep the payments, in their transactions (Upsert, Update) or on
// the pool (Get, CustomerOf); *postgres.Payments implements it.
type Payments interface {
	Get(ctx context.Context, orderID string) (payment.Payment, error)
	// CustomerOf returns the customer of an order, "" when the service has not heard of it.
	CustomerOf(ctx context.Context, orderID string) (string, error)
	Upsert(ctx context.Context, tx *sql.Tx, orderID string, decide postgres.Decide) error
	Update(ctx context.Context, tx *sql.Tx, orderID string, fn func(p *payment.Payment) error) error
}

// App is the payment service's use cases over its database and the card gateway.
type App struct {
	saga     *msgpg.Saga
	payments Payments
	alerts   Alerts
	gateway  payment.Gateway
	metrics  *Metrics
}

// Alerts is where a gateway answer that does not match its order reaches an operator: the
// service's dead letters. The path is the one every poison message takes, so nothing new is
// needed downstream: DeadLetters.Store keeps the StockReserved that met the mismatch (listed
// and replayable at GET /dead-letters) with the mismatch as its error, and emits DeadLettered on
// dead-letter-events, which the notification service turns into an operator alert. Store is
// idempotent per Kafka record, so a redelivery after a crash alerts once.
type Alerts struct {
	DeadLetters *msgpg.DeadLetters
	// Service names the service in its dead letters ("payment").
	Service string
}

// New returns the use cases over db; their events go out through outbox, their alerts through
// alerts, their charges and voids through gateway.
func New(db *sql.DB, payments Payments, outbox *msgpg.Outbox, alerts Alerts, gateway payment.Gateway, metrics *Metrics) *App {
	return &App{
		saga:     &msgpg.Saga{DB: db, Outbox: outbox, AggregateType: payment.AggregateType, Version: payment.EventVersion},
		payments: payments, alerts: alerts, gateway: gateway, metrics: metrics,
	}
}

// begin is the first transaction of a step: unless m took effect before (done), it runs decide on
// the payment of orderID as found (nil: none yet) and stores what decide returns (nil: nothing).
// When decide asks for a gateway call (call), m is left unmarked: the transaction that records the
// gateway's answer marks it (record). Otherwise m is marked processed here. decide may run more
// than once (see postgres.Payments.Upsert), so it must only decide.
func (s *App) begin(ctx context.Context, m *messaging.Message, orderID string,
	decide func(found *payment.Payment) (store *payment.Payment, call bool)) (done, call bool, err error) {
	err = msgpg.WithTx(ctx, s.saga.DB, func(tx *sql.Tx) error {
		var err error
		if done, err = msgpg.IsProcessed(ctx, tx, m); err != nil || done {
			return err
		}
		err = s.payments.Upsert(ctx, tx, orderID, func(found *payment.Payment) (*payment.Payment, error) {
			var store *payment.Payment
			store, call = decide(found)
			return store, nil
		})
		if err != nil || call {
			return err
		}
		_, err = msgpg.MarkProcessed(ctx, tx, m)
		return err
	})
	return done, call, err
}

// record is the transaction that records what the gateway answered: m's inbox row when mark is
// set (an m processed meanwhile, by a concurrent redelivery, then changes nothing), change applied
// to the locked payment of orderID, and the events change returns. It returns the payment as
// changed and the events written (none when nothing changed).
func (s *App) record(ctx context.Context, m *messaging.Message, orderID string, mark bool,
	change func(p payment.Payment) (payment.Payment, []messaging.Event, error)) (payment.Payment, []messaging.Event, error) {
	var (
		changed payment.Payment
		events  []messaging.Event
	)
	err := msgpg.WithTx(ctx, s.saga.DB, func(tx *sql.Tx) error {
		events = nil
		if mark {
			first, err := msgpg.MarkProcessed(ctx, tx, m)
			if err != nil || !first {
				return err
			}
		}
		err := s.payments.Update(ctx, tx, orderID, func(p *payment.Payment) error {
			next, evs, err := change(*p)
			changed, events, *p = next, evs, next
			return err
		})
		if err != nil {
			return err
		}
		return s.saga.Emit(ctx, tx, m, orderID, events...)
	})
	if err != nil {
		return payment.Payment{}, nil, err
	}
	if len(events) > 0 {
		s.metrics.reached(changed.Status)
	}
	return changed, events, nil
}

// void gives back the charge of p, an AUTHORIZED payment, at the gateway, then records it
// (record): VOIDED and PaymentVoided, with m's inbox row when mark is set. Every part of it is
// safe to repeat: the gateway's void is idempotent, and a payment no longer AUTHORIZED is left
// alone. A void answer that is not about p's charge, or shows its money still taken, is poison
// (gatewayError): the consumer dead-letters m, which alerts an operator, and the payment stays
// AUTHORIZED. A 401 is an outage (messaging.Outage): retried until the gateway takes the
// secret.
func (s *App) void(ctx context.Context, m *messaging.Message, p payment.Payment, mark bool) error {
	orderID := p.OrderID
	res, err := s.gateway.Void(ctx, p.VoidRequest())
	if err != nil {
		return s.gatewayError(ctx, fmt.Errorf("void payment of order %s: %w", orderID, err))
	}
	voided, events, err := s.record(ctx, m, orderID, mark, func(p payment.Payment) (payment.Payment, []messaging.Event, error) {
		return p.Void(res)
	})
	if err != nil {
		return s.gatewayError(ctx, fmt.Errorf("record void of order %s: %w", orderID, err))
	}
	if len(events) > 0 {
		zerolog.Ctx(ctx).Info().Str("pgTxnId", voided.PgTxnID).Msg("payment voided")
	}
	return nil
}

// gatewayError marks what a gateway error asks of the consumer: a mismatch is poison (a
// fault.Unprocessable, which messaging.Classify dead-letters, hence an operator alert), a refused
// merchant secret an outage (messaging.Outage: retried until fixed, logged as an error each
// time); anything else is returned as it is.
func (s *App) gatewayError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, payment.ErrGatewayMismatch):
		zerolog.Ctx(ctx).Error().Err(err).Msg("gateway answer does not match the payment; dead-lettering for an operator")
		return fmt.Errorf("%w: %w", fault.Errorf(fault.Unprocessable, "the gateway's answer does not match the payment"), err)
	case errors.Is(err, payment.ErrGatewayUnauthorized):
		zerolog.Ctx(ctx).Error().Err(err).Msg("THE GATEWAY REFUSES THE MERCHANT SECRET (check PAYMENT_GATEWAY_SECRET): nothing is charged or voided until it is fixed; retrying")
		return messaging.Outage(err)
	default:
		return err
	}
}

// alert reports a gateway mismatch met while handling m to an operator (Alerts).
func (s *App) alert(ctx context.Context, m *messaging.Message, cause error) error {
	id, err := s.alerts.DeadLetters.Store(ctx, s.alerts.Service, m, cause, 1)
	if err != nil {
		return fmt.Errorf("alert on order %s: %w", m.AggregateID, err)
	}
	zerolog.Ctx(ctx).Error().Err(cause).Int64("deadLetterId", id).Msg("gateway answer does not match the order; payment fails, operator alerted")
	return nil
}

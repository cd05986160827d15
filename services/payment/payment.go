// Package payment is the payment service's domain: a payment per order, the charge it asks of a
// card gateway, and the transitions that the saga's events and the gateway's answers cause.
//
// The functions here decide and never do I/O: each returns the new state and the events to emit
// as values (messaging.Event); the saga steps persist both in one transaction.
package payment

import (
	"context"
	"errors"
	"fmt"
	"time"

	"outboxsaga.dev/messaging"
)

// Status is where a payment stands.
type Status string

// Payment statuses. AUTHORIZING is the only one that is waiting on the gateway; FAILED, VOIDED
// and CANCELED never change again, and AUTHORIZED only becomes VOIDED.
const (
	StatusAuthorizing Status = "AUTHORIZING"
	StatusAuthorized  Status = "AUTHORIZED"
	StatusFailed      Status = "FAILED"
	StatusVoided      Status = "VOIDED"
	StatusCanceled    Status = "CANCELED"
)

// Reasons a payment failed, as PaymentFailed carries them (schemas/PaymentFailed.v1.json).
const (
	ReasonCardDeclined   = "CARD_DECLINED"
	ReasonGatewayError   = "GATEWAY_ERROR"
	ReasonGatewayTimeout = "GATEWAY_TIMEOUT"
	// ReasonGatewayMismatch: the gateway's answer was not about this order's charge (another
	// order, amount, currency, key, or a status its answer cannot have), or it holds the order's
	// key for other terms. The money is never taken as authorized; an operator is alerted.
	ReasonGatewayMismatch = "GATEWAY_MISMATCH"
)

// Event types this service emits.
const (
	EventPaymentAuthorized = "PaymentAuthorized"
	EventPaymentFailed     = "PaymentFailed"
	EventPaymentVoided     = "PaymentVoided"
)

// AggregateType is the outbox aggregate type of every payment event; Debezium routes it to the
// topic payment-events.
const AggregateType = "payment"

// EventVersion is the version of every event this service emits.
const EventVersion = 1

// Payment is the payment of one order.
type Payment struct {
	OrderID  string
	Status   Status
	Amount   int64 // minor units
	Currency string
	Token    string
	// PgTxnID is the gateway's charge id, once the gateway answered.
	PgTxnID string
	// Reason says why a payment FAILED.
	Reason string
	// CancelRequested records an OrderCanceled that arrived while the charge was in flight: the
	// charging step voids an approval as soon as it has recorded it.
	CancelRequested bool
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Terms are what a StockReserved asks to be charged.
type Terms struct {
	OrderID  string
	Amount   int64
	Currency string
	Token    string
}

// IdempotencyKey is the gateway key of an order's charge. It is the same for every attempt and
// every redelivery, so the gateway never charges an order twice.
func IdempotencyKey(orderID string) string {
	return "pay:" + orderID
}

// ChargeStatus is the state of a charge in the gateway's ledger.
type ChargeStatus string

// Charge statuses as the gateway reports them.
const (
	ChargeStatusApproved ChargeStatus = "APPROVED"
	ChargeStatusDeclined ChargeStatus = "DECLINED"
	ChargeStatusVoided   ChargeStatus = "VOIDED"
)

// ChargeRequest asks the gateway to take money.
type ChargeRequest struct {
	OrderID        string
	IdempotencyKey string
	Amount         int64
	Currency       string
	Token          string
}

// ChargeResult is the gateway's record of a charge: what it did, not what was asked.
type ChargeResult struct {
	ChargeID string
	Status   ChargeStatus
	// DeclineCode is the gateway's reason for a DECLINED charge (CARD_DECLINED, INVALID_TOKEN, ...).
	DeclineCode string
	// OrderID, IdempotencyKey, Amount and Currency are the terms the gateway reports the charge
	// under; a client checks them against what it asked (a VOIDED placeholder, left by a void
	// before any charge, has amount 0 and no currency).
	OrderID        string
	IdempotencyKey string
	Amount         int64
	Currency       string
}

// VoidRequest asks the gateway to give back the charge of an idempotency key. Amount and
// Currency are the terms the order's charge was asked with; the void's answer must show them (or
// a placeholder's). Amount 0 leaves them unchecked: the void of a key whose charge is known not
// to be the order's (after a mismatch), where only the order, the key and that no money is held
// can be checked.
type VoidRequest struct {
	OrderID        string
	IdempotencyKey string
	Amount         int64
	Currency       string
}

// Gateway is the card gateway. A declined charge is a result, not an error. Errors wrap
// ErrGatewayTimeout or ErrGatewayUnavailable when trying again may succeed (the charge's fate is
// then unknown), and ErrGatewayRejected when the gateway refused the request itself.
type Gateway interface {
	// Charge takes money once per idempotency key: a repeated key returns the existing charge.
	Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error)
	// Void gives back the charge of req's key; for a key without a charge it leaves a VOIDED
	// placeholder so that a late approval never lands.
	Void(ctx context.Context, req VoidRequest) (ChargeResult, error)
}

// Gateway error classes.
var (
	ErrGatewayTimeout     = errors.New("gateway did not answer in time")
	ErrGatewayUnavailable = errors.New("gateway unavailable")
	ErrGatewayRejected    = errors.New("gateway rejected the request")
	// ErrGatewayMismatch: the gateway answered about another charge than the one asked for
	// (another order, key, amount or currency, or a status its answer cannot have), or refused
	// the key as held for other terms (409 idempotency_conflict). Never an authorization, never
	// worth retrying: the payment fails (ReasonGatewayMismatch) and an operator is alerted.
	ErrGatewayMismatch = errors.New("gateway answer does not match the order")
	// ErrGatewayUnauthorized: the gateway refused the merchant's credentials (401). Nothing was
	// charged; it is an outage or a configuration error (PAYMENT_GATEWAY_SECRET), retried until
	// fixed, not a fault of the payment.
	ErrGatewayUnauthorized = errors.New("gateway refused the merchant secret")
)

// IsTransient reports whether err leaves a charge's fate unknown, so that trying again (with the
// same idempotency key) may succeed.
func IsTransient(err error) bool {
	return errors.Is(err, ErrGatewayTimeout) || errors.Is(err, ErrGatewayUnavailable)
}

// PaymentAuthorized is the data of a PaymentAuthorized event.
type PaymentAuthorized struct {
	OrderID  string `json:"orderId"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	PgTxnID  string `json:"pgTxnId"`
}

// PaymentFailed is the data of a PaymentFailed event.
type PaymentFailed struct {
	OrderID  string `json:"orderId"`
	Reason   string `json:"reason"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// PaymentVoided is the data of a PaymentVoided event.
type PaymentVoided struct {
	OrderID  string `json:"orderId"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	PgTxnID  string `json:"pgTxnId"`
}

// Admit decides what a StockReserved does with the order's payment as found (nil: none yet). It
// returns the payment to store (nil: store nothing) and whether to ask the gateway for the charge.
//
// A new payment starts AUTHORIZING. An AUTHORIZING one is charged again: a crash came between the
// gateway's answer and its recording, and the idempotency key makes the repeat safe. A canceled
// order is never charged, and a payment that already has its answer is left as it is.
func Admit(found *Payment, t Terms) (store *Payment, charge bool) {
	if found == nil {
		return &Payment{
			OrderID:  t.OrderID,
			Status:   StatusAuthorizing,
			Amount:   t.Amount,
			Currency: t.Currency,
			Token:    t.Token,
		}, true
	}
	return nil, found.Status == StatusAuthorizing
}

// ChargeRequest returns the gateway request of p.
func (p Payment) ChargeRequest() ChargeRequest {
	return ChargeRequest{
		OrderID:        p.OrderID,
		IdempotencyKey: IdempotencyKey(p.OrderID),
		Amount:         p.Amount,
		Currency:       p.Currency,
		Token:          p.Token,
	}
}

// Outcome is how a charge ended, as the charging step saw it: the gateway's result, or the error
// that remained after every attempt.
type Outcome struct {
	Result ChargeResult
	Err    error
}

// Unknown reports whether the gateway may have taken the money without telling: the charge must
// be voided before the payment is recorded as failed.
func (o Outcome) Unknown() bool {
	return o.Err != nil && IsTransient(o.Err)
}

// Mismatch reports whether the gateway's answer was not about this order's charge: the payment
// fails (ReasonGatewayMismatch), the key is voided, and an operator is alerted.
func (o Outcome) Mismatch() bool {
	return errors.Is(o.Err, ErrGatewayMismatch)
}

// Settle records a charge's outcome on an AUTHORIZING payment: approved → AUTHORIZED and
// PaymentAuthorized; declined, voided or failed → FAILED and PaymentFailed. A payment in any
// other status already has its answer: it is returned unchanged, with no events.
func (p Payment) Settle(o Outcome) (Payment, []messaging.Event) {
	if p.Status != StatusAuthorizing {
		return p, nil
	}
	if o.Err != nil {
		reason := ReasonGatewayError
		switch {
		case o.Mismatch():
			reason = ReasonGatewayMismatch
		case errors.Is(o.Err, ErrGatewayTimeout):
			reason = ReasonGatewayTimeout
		}
		return p.fail(reason)
	}
	p.PgTxnID = o.Result.ChargeID
	switch o.Result.Status {
	case ChargeStatusApproved:
		p.Status = StatusAuthorized
		return p, []messaging.Event{{Type: EventPaymentAuthorized, Data: PaymentAuthorized{
			OrderID: p.OrderID, Amount: p.Amount, Currency: p.Currency, PgTxnID: p.PgTxnID,
		}}}
	case ChargeStatusDeclined:
		// Every decline (CARD_DECLINED, INVALID_TOKEN, ...) is CARD_DECLINED to the saga: the
		// event's reason is a closed set; the gateway's own code goes to the log.
		return p.fail(ReasonCardDeclined)
	default:
		// VOIDED: an earlier attempt gave up and voided the key, then crashed before recording it.
		return p.fail(ReasonGatewayError)
	}
}

func (p Payment) fail(reason string) (Payment, []messaging.Event) {
	p.Status = StatusFailed
	p.Reason = reason
	return p, []messaging.Event{{Type: EventPaymentFailed, Data: PaymentFailed{
		OrderID: p.OrderID, Reason: reason, Amount: p.Amount, Currency: p.Currency,
	}}}
}

// VoidPending reports whether p holds money for an order that was canceled while its charge was
// in flight.
func (p Payment) VoidPending() bool {
	return p.Status == StatusAuthorized && p.CancelRequested
}

// VoidRequest returns the gateway request that gives back p's charge.
func (p Payment) VoidRequest() VoidRequest {
	return VoidRequest{OrderID: p.OrderID, IdempotencyKey: IdempotencyKey(p.OrderID), Amount: p.Amount, Currency: p.Currency}
}

// Void records the gateway's void of an AUTHORIZED payment: VOIDED and PaymentVoided. A payment
// in any other status is returned unchanged, with no events (someone voided it first). It is an
// error wrapping ErrGatewayMismatch if the gateway reports another charge than the one it
// authorized, or that charge not VOIDED.
func (p Payment) Void(res ChargeResult) (Payment, []messaging.Event, error) {
	if p.Status != StatusAuthorized {
		return p, nil, nil
	}
	if res.Status != ChargeStatusVoided || (p.PgTxnID != "" && res.ChargeID != p.PgTxnID) {
		return p, nil, fmt.Errorf("void payment of order %s: %w: gateway reports charge %s as %s, the payment holds charge %s",
			p.OrderID, ErrGatewayMismatch, res.ChargeID, res.Status, p.PgTxnID)
	}
	p.Status = StatusVoided
	return p, []messaging.Event{{Type: EventPaymentVoided, Data: PaymentVoided{
		OrderID: p.OrderID, Amount: p.Amount, Currency: p.Currency, PgTxnID: p.PgTxnID,
	}}}, nil
}

// CancelAction is what an OrderCanceled asks the saga step to do beyond storing the payment.
type CancelAction int

// Cancel actions.
const (
	// CancelDone: nothing more to do (the cancel is recorded, deferred, or moot).
	CancelDone CancelAction = iota
	// CancelVoid: the payment holds money; void it at the gateway, then record it with Void.
	CancelVoid
)

// Cancel decides what an OrderCanceled does with the order's payment as found (nil: none yet). It
// returns the payment to store (nil: store nothing) and what else to do.
//
// No payment yet → CANCELED, so a later StockReserved charges nothing. AUTHORIZING → the cancel is
// remembered and the charging step voids when it finishes. AUTHORIZED → void. FAILED, VOIDED and
// CANCELED hold no money: nothing to do.
func Cancel(found *Payment, orderID string) (store *Payment, act CancelAction) {
	if found == nil {
		return &Payment{OrderID: orderID, Status: StatusCanceled}, CancelDone
	}
	switch found.Status {
	case StatusAuthorizing:
		p := *found
		p.CancelRequested = true
		return &p, CancelDone
	case StatusAuthorized:
		return nil, CancelVoid
	default:
		return nil, CancelDone
	}
}

// Package gatewaysim simulates a card payment gateway: an in-memory ledger of
// charges keyed by idempotency key, with test tokens that approve, decline,
// fail transiently or answer too late. Like a real PSP it holds an idempotency
// key to the terms it was first used with: a reuse with another order, amount
// or currency is refused (ErrIdempotencyConflict), never answered with the
// existing charge as if it matched.
package gatewaysim

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"outboxsaga.dev/messaging/fault"
)

// Test tokens and their behaviour. Any other token is declined with
// DeclineInvalidToken.
const (
	// TokenOK approves the charge.
	TokenOK = "tok_ok"
	// TokenDeclined records a declined charge (DeclineCardDeclined).
	TokenDeclined = "tok_declined"
	// TokenFlaky fails with ErrUnavailable for the first FlakyFailures
	// attempts of an idempotency key, then approves.
	TokenFlaky = "tok_flaky"
	// TokenTimeout holds every request of its key for TimeoutDelay (or until the caller
	// gives up), then approves anyway unless the key was voided meanwhile.
	TokenTimeout = "tok_timeout"
)

// Decline codes recorded on declined charges.
const (
	// DeclineCardDeclined is the issuer's refusal.
	DeclineCardDeclined = "CARD_DECLINED"
	// DeclineInvalidToken is given for a token the gateway does not know.
	DeclineInvalidToken = "INVALID_TOKEN"
)

// Status is the state of a charge in the ledger.
type Status string

// Charge statuses.
const (
	// StatusApproved means the money was taken.
	StatusApproved Status = "APPROVED"
	// StatusDeclined means no money was taken.
	StatusDeclined Status = "DECLINED"
	// StatusVoided means an approved charge was given back, or the key was
	// voided before any charge existed.
	StatusVoided Status = "VOIDED"
)

// ErrUnavailable reports a transient gateway failure (fault.Unavailable: HTTP 503); the caller
// may retry with the same idempotency key.
var ErrUnavailable = fault.Errorf(fault.Unavailable, "gateway temporarily unavailable")

// CodeIdempotencyConflict is the error code (HTTP 409) of a request whose idempotency key
// already belongs to other terms.
const CodeIdempotencyConflict = "idempotency_conflict"

// conflict reports a request whose key the ledger already holds for other terms
// (fault.Conflict with the reason CodeIdempotencyConflict: HTTP 409). The charge of the key is
// left as it is.
func conflict(key, problem string) error {
	return fault.Reasoned(fault.Conflict, CodeIdempotencyConflict, "idempotency key %s is already used %s", key, problem)
}

// IsConflict reports whether err refuses a reuse of an idempotency key with other terms.
func IsConflict(err error) bool {
	return fault.Reason(err) == CodeIdempotencyConflict
}

// invalid reports a request field that is missing or malformed (fault.Invalid: HTTP 400); the
// message starts with the field's JSON name.
func invalid(field, problem string) error {
	return fault.Errorf(fault.Invalid, "%s: %s", field, problem)
}

// Charge is one entry of the ledger. There is at most one per idempotency key.
type Charge struct {
	ID             string    `json:"chargeId"` // "ch_<random>"
	OrderID        string    `json:"orderId"`
	IdempotencyKey string    `json:"idempotencyKey"`
	Amount         int64     `json:"amount"` // minor units; 0 for a void placeholder
	Currency       string    `json:"currency"`
	Status         Status    `json:"status"`
	DeclineCode    string    `json:"declineCode,omitempty"` // set when DECLINED
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
}

// ChargeRequest asks the gateway to take money: the body of POST /charges.
type ChargeRequest struct {
	OrderID        string `json:"orderId"`
	IdempotencyKey string `json:"idempotencyKey"`
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	Token          string `json:"token"`
}

// Validate reports the first invalid field (fault.Invalid, the message starting with the field).
func (r ChargeRequest) Validate() error {
	if err := (VoidRequest{OrderID: r.OrderID, IdempotencyKey: r.IdempotencyKey}).Validate(); err != nil {
		return err
	}
	switch {
	case r.Amount <= 0:
		return invalid("amount", "must be positive")
	case !isCurrency(r.Currency):
		return invalid("currency", "must be a three-letter ISO 4217 code")
	case r.Token == "":
		return invalid("token", "is required")
	}
	return nil
}

// VoidRequest asks the gateway to give back the charge of an idempotency key: the body of
// POST /charges/void.
type VoidRequest struct {
	OrderID        string `json:"orderId"`
	IdempotencyKey string `json:"idempotencyKey"`
}

// Validate reports the first invalid field (fault.Invalid, the message starting with the field).
func (r VoidRequest) Validate() error {
	switch {
	case r.OrderID == "":
		return invalid("orderId", "is required")
	case r.IdempotencyKey == "":
		return invalid("idempotencyKey", "is required")
	}
	return nil
}

// ChargeResult is the outcome of Ledger.Charge.
type ChargeResult struct {
	Charge Charge
	// Replayed is true when the key already had a charge, which is returned
	// unchanged.
	Replayed bool
}

// VoidOutcome tells what Ledger.Void did.
type VoidOutcome string

// Void outcomes.
const (
	// VoidVoided means an approved charge became VOIDED.
	VoidVoided VoidOutcome = "voided"
	// VoidUnchanged means the charge was already VOIDED or DECLINED.
	VoidUnchanged VoidOutcome = "unchanged"
	// VoidPlaceholder means no charge existed; a VOIDED placeholder now
	// blocks any later approval of the key.
	VoidPlaceholder VoidOutcome = "placeholder"
)

// VoidResult is the outcome of Ledger.Void.
type VoidResult struct {
	Charge  Charge
	Outcome VoidOutcome
}

// Config sets the behaviour of the test tokens.
type Config struct {
	// TimeoutDelay is how long TokenTimeout holds a request.
	TimeoutDelay time.Duration
	// FlakyFailures is how many attempts of a key TokenFlaky fails.
	FlakyFailures int
	// After, when set, replaces time.After for TokenTimeout's delay: the gateway approves the
	// charge when the channel it returns delivers. It is called once per charge, when the
	// gateway starts working on it, so that a test knows the charge is in flight and decides
	// when it lands.
	After func(d time.Duration) <-chan time.Time
}

// Ledger is the gateway's in-memory record of charges. It is safe for
// concurrent use.
type Ledger struct {
	cfg Config
	now func() time.Time

	mu       sync.Mutex
	byKey    map[string]*Charge
	attempts map[string]int            // failed TokenFlaky attempts per key
	pending  map[string]*pendingCharge // TokenTimeout charges in progress
}

// pendingCharge is a TokenTimeout charge the gateway is still working on.
type pendingCharge struct {
	req    ChargeRequest // what the first request of the key asked
	done   chan struct{} // closed once result and err are set
	result ChargeResult
	err    error
}

// NewLedger returns an empty ledger.
func NewLedger(cfg Config) *Ledger {
	if cfg.After == nil {
		cfg.After = time.After
	}
	return &Ledger{
		cfg:      cfg,
		now:      func() time.Time { return time.Now().UTC() },
		byKey:    make(map[string]*Charge),
		attempts: make(map[string]int),
		pending:  make(map[string]*pendingCharge),
	}
}

// Charge takes money for req according to its token. A key that already has a
// charge of the same order, amount and currency gets that charge back
// (Replayed), never a second one; a key held for other terms (a charge, or a
// TokenTimeout charge still in flight) is refused with a conflict
// (IsConflict), the existing charge untouched. A declined charge is recorded
// and returned without error.
func (l *Ledger) Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error) {
	if err := req.Validate(); err != nil {
		return ChargeResult{}, err
	}
	c, found, err := l.lookup(req)
	if err != nil {
		return ChargeResult{}, err
	}
	if found {
		return ChargeResult{Charge: c, Replayed: true}, nil
	}

	status, declineCode := StatusApproved, ""
	switch req.Token {
	case TokenOK:
	case TokenDeclined:
		status, declineCode = StatusDeclined, DeclineCardDeclined
	case TokenFlaky:
		if l.failFlaky(req.IdempotencyKey) {
			return ChargeResult{}, ErrUnavailable
		}
	case TokenTimeout:
		return l.slow(ctx, req)
	default:
		status, declineCode = StatusDeclined, DeclineInvalidToken
	}
	return l.insert(req, status, declineCode)
}

// Void gives back the charge of req's idempotency key. It is idempotent. A key
// whose charge (or charge in flight) belongs to another order is refused with a
// conflict (IsConflict), the charge untouched.
func (l *Ledger) Void(req VoidRequest) (VoidResult, error) {
	if err := req.Validate(); err != nil {
		return VoidResult{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()

	now := l.now()
	c, ok := l.byKey[req.IdempotencyKey]
	if p, inFlight := l.pending[req.IdempotencyKey]; !ok && inFlight && p.req.OrderID != req.OrderID {
		return VoidResult{}, conflict(req.IdempotencyKey, "for order "+p.req.OrderID)
	}
	switch {
	case ok && c.OrderID != req.OrderID:
		return VoidResult{}, conflict(req.IdempotencyKey, "for order "+c.OrderID)
	case !ok:
		c = &Charge{
			ID:             newChargeID(),
			OrderID:        req.OrderID,
			IdempotencyKey: req.IdempotencyKey,
			Status:         StatusVoided,
			CreatedAt:      now,
			UpdatedAt:      now,
		}
		l.byKey[req.IdempotencyKey] = c
		return VoidResult{Charge: *c, Outcome: VoidPlaceholder}, nil
	case c.Status == StatusApproved:
		c.Status = StatusVoided
		c.UpdatedAt = now
		return VoidResult{Charge: *c, Outcome: VoidVoided}, nil
	default:
		return VoidResult{Charge: *c, Outcome: VoidUnchanged}, nil
	}
}

// List returns the charges of orderID, or all charges when orderID is empty,
// oldest first. The result is never nil.
func (l *Ledger) List(orderID string) []Charge {
	l.mu.Lock()
	defer l.mu.Unlock()

	out := make([]Charge, 0, len(l.byKey))
	for _, c := range l.byKey {
		if orderID == "" || c.OrderID == orderID {
			out = append(out, *c)
		}
	}
	slices.SortFunc(out, func(a, b Charge) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// lookup returns the charge of req's key when the ledger has one (found), or a conflict when
// the key's charge, or its TokenTimeout charge in flight, was asked with other terms.
func (l *Ledger) lookup(req ChargeRequest) (c Charge, found bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()

	if existing, ok := l.byKey[req.IdempotencyKey]; ok {
		if err := mismatch(*existing, req); err != nil {
			return Charge{}, false, err
		}
		return *existing, true, nil
	}
	if p, ok := l.pending[req.IdempotencyKey]; ok {
		if err := mismatch(Charge{OrderID: p.req.OrderID, Amount: p.req.Amount, Currency: p.req.Currency}, req); err != nil {
			return Charge{}, false, err
		}
	}
	return Charge{}, false, nil
}

// mismatch returns a conflict when req asks for other terms than c, the charge its key holds:
// another order, amount or currency. A VOIDED placeholder (a void came before any charge: amount
// 0, no currency) holds its key for its order only.
func mismatch(c Charge, req ChargeRequest) error {
	placeholder := c.Status == StatusVoided && c.Amount == 0 && c.Currency == ""
	switch {
	case c.OrderID != req.OrderID:
		return conflict(req.IdempotencyKey, "for order "+c.OrderID)
	case placeholder:
		return nil
	case c.Amount != req.Amount || c.Currency != req.Currency:
		return conflict(req.IdempotencyKey, fmt.Sprintf("for another amount (%d %s)", c.Amount, c.Currency))
	}
	return nil
}

// failFlaky counts an attempt of key and reports whether it must fail.
func (l *Ledger) failFlaky(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()

	if l.attempts[key] >= l.cfg.FlakyFailures {
		return false
	}
	l.attempts[key]++
	return true
}

// slow is TokenTimeout: the gateway works on the charge for TimeoutDelay whatever
// the caller does, then approves it (unless the key was voided meanwhile). Every
// request for the key waits for that, or until its own ctx ends (then it fails with
// ErrUnavailable): a caller whose timeout is shorter than the delay never gets an
// answer in time, and a retry after the delay gets the recorded charge. It is the
// worst case of a real gateway: the money is taken while the answer is lost.
func (l *Ledger) slow(ctx context.Context, req ChargeRequest) (ChargeResult, error) {
	l.mu.Lock()
	p, waiting := l.pending[req.IdempotencyKey]
	if waiting {
		if err := mismatch(Charge{OrderID: p.req.OrderID, Amount: p.req.Amount, Currency: p.req.Currency}, req); err != nil {
			l.mu.Unlock()
			return ChargeResult{}, err
		}
	} else {
		p = &pendingCharge{req: req, done: make(chan struct{})}
		l.pending[req.IdempotencyKey] = p
	}
	l.mu.Unlock()
	if !waiting {
		worked := l.cfg.After(l.cfg.TimeoutDelay)
		go func() {
			<-worked
			res, err := l.insert(req, StatusApproved, "")
			l.mu.Lock()
			p.result, p.err = res, err
			delete(l.pending, req.IdempotencyKey)
			l.mu.Unlock()
			close(p.done)
		}()
	}
	select {
	case <-p.done:
		if p.err != nil {
			return ChargeResult{}, p.err
		}
		res := p.result
		res.Replayed = res.Replayed || waiting // a second request of the key gets the first one's charge
		return res, nil
	case <-ctx.Done():
		return ChargeResult{}, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
}

// insert records a new charge unless the key got one meanwhile (a concurrent
// request or a void), in which case that one is returned as a replay, or a
// conflict when it was for other terms.
func (l *Ledger) insert(req ChargeRequest, status Status, declineCode string) (ChargeResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()

	if c, ok := l.byKey[req.IdempotencyKey]; ok {
		if err := mismatch(*c, req); err != nil {
			return ChargeResult{}, err
		}
		return ChargeResult{Charge: *c, Replayed: true}, nil
	}
	now := l.now()
	c := &Charge{
		ID:             newChargeID(),
		OrderID:        req.OrderID,
		IdempotencyKey: req.IdempotencyKey,
		Amount:         req.Amount,
		Currency:       req.Currency,
		Status:         status,
		DeclineCode:    declineCode,
		CreatedAt:      now,
		UpdatedAt:      now,
	}
	l.byKey[req.IdempotencyKey] = c
	delete(l.attempts, req.IdempotencyKey)
	return ChargeResult{Charge: *c}, nil
}

func newChargeID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+).
	return "ch_" + hex.EncodeToString(b)
}

func isCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

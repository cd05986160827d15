package payment_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/payment"
)

var terms = payment.Terms{OrderID: "o1", Amount: 39000, Currency: "KRW", Token: "tok_ok"}

func authorizing() payment.Payment {
	return payment.Payment{OrderID: "o1", Status: payment.StatusAuthorizing, Amount: 39000, Currency: "KRW", Token: "tok_ok"}
}

func with(p payment.Payment, change func(*payment.Payment)) payment.Payment {
	change(&p)
	return p
}

func TestAdmit(t *testing.T) {
	tests := []struct {
		name       string
		found      *payment.Payment
		wantStore  *payment.Payment
		wantCharge bool
	}{
		{name: "new payment starts authorizing", found: nil, wantStore: new(authorizing()), wantCharge: true},
		{name: "authorizing after a crash is charged again", found: new(authorizing()), wantCharge: true},
		{name: "canceled first: nothing charged", found: &payment.Payment{OrderID: "o1", Status: payment.StatusCanceled}},
		{name: "authorized stays", found: new(with(authorizing(), func(p *payment.Payment) { p.Status = payment.StatusAuthorized }))},
		{name: "failed stays", found: new(with(authorizing(), func(p *payment.Payment) { p.Status = payment.StatusFailed }))},
		{name: "voided stays", found: new(with(authorizing(), func(p *payment.Payment) { p.Status = payment.StatusVoided }))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, charge := payment.Admit(tt.found, terms)
			if !reflect.DeepEqual(store, tt.wantStore) || charge != tt.wantCharge {
				t.Fatalf("Admit = %+v, %v; want %+v, %v", store, charge, tt.wantStore, tt.wantCharge)
			}
		})
	}
}

func TestChargeRequest(t *testing.T) {
	want := payment.ChargeRequest{OrderID: "o1", IdempotencyKey: "pay:o1", Amount: 39000, Currency: "KRW", Token: "tok_ok"}
	if got := authorizing().ChargeRequest(); got != want {
		t.Fatalf("ChargeRequest = %+v, want %+v", got, want)
	}
}

func TestSettle(t *testing.T) {
	failed := func(reason, pgTxnID string) payment.Payment {
		return with(authorizing(), func(p *payment.Payment) {
			p.Status, p.Reason, p.PgTxnID = payment.StatusFailed, reason, pgTxnID
		})
	}
	failedEvent := func(reason string) []messaging.Event {
		return []messaging.Event{{Type: payment.EventPaymentFailed, Data: payment.PaymentFailed{
			OrderID: "o1", Reason: reason, Amount: 39000, Currency: "KRW"}}}
	}
	tests := []struct {
		name       string
		p          payment.Payment
		outcome    payment.Outcome
		want       payment.Payment
		wantEvents []messaging.Event
	}{
		{
			name:    "approved",
			p:       authorizing(),
			outcome: payment.Outcome{Result: payment.ChargeResult{ChargeID: "ch_1", Status: payment.ChargeStatusApproved}},
			want:    with(authorizing(), func(p *payment.Payment) { p.Status, p.PgTxnID = payment.StatusAuthorized, "ch_1" }),
			wantEvents: []messaging.Event{{Type: payment.EventPaymentAuthorized, Data: payment.PaymentAuthorized{
				OrderID: "o1", Amount: 39000, Currency: "KRW", PgTxnID: "ch_1"}}},
		},
		{
			name:    "approved keeps a cancel that came meanwhile",
			p:       with(authorizing(), func(p *payment.Payment) { p.CancelRequested = true }),
			outcome: payment.Outcome{Result: payment.ChargeResult{ChargeID: "ch_1", Status: payment.ChargeStatusApproved}},
			want: with(authorizing(), func(p *payment.Payment) {
				p.Status, p.PgTxnID, p.CancelRequested = payment.StatusAuthorized, "ch_1", true
			}),
			wantEvents: []messaging.Event{{Type: payment.EventPaymentAuthorized, Data: payment.PaymentAuthorized{
				OrderID: "o1", Amount: 39000, Currency: "KRW", PgTxnID: "ch_1"}}},
		},
		{
			name:       "declined",
			p:          authorizing(),
			outcome:    payment.Outcome{Result: payment.ChargeResult{ChargeID: "ch_2", Status: payment.ChargeStatusDeclined, DeclineCode: "CARD_DECLINED"}},
			want:       failed(payment.ReasonCardDeclined, "ch_2"),
			wantEvents: failedEvent(payment.ReasonCardDeclined),
		},
		{
			name:       "invalid token is a card decline",
			p:          authorizing(),
			outcome:    payment.Outcome{Result: payment.ChargeResult{ChargeID: "ch_3", Status: payment.ChargeStatusDeclined, DeclineCode: "INVALID_TOKEN"}},
			want:       failed(payment.ReasonCardDeclined, "ch_3"),
			wantEvents: failedEvent(payment.ReasonCardDeclined),
		},
		{
			name:       "voided key (an earlier attempt gave up) fails",
			p:          authorizing(),
			outcome:    payment.Outcome{Result: payment.ChargeResult{ChargeID: "ch_4", Status: payment.ChargeStatusVoided}},
			want:       failed(payment.ReasonGatewayError, "ch_4"),
			wantEvents: failedEvent(payment.ReasonGatewayError),
		},
		{
			name:       "timeout after all attempts",
			p:          authorizing(),
			outcome:    payment.Outcome{Err: fmt.Errorf("charge pay:o1: %w", payment.ErrGatewayTimeout)},
			want:       failed(payment.ReasonGatewayTimeout, ""),
			wantEvents: failedEvent(payment.ReasonGatewayTimeout),
		},
		{
			name:       "unavailable after all attempts",
			p:          authorizing(),
			outcome:    payment.Outcome{Err: fmt.Errorf("charge pay:o1: %w", payment.ErrGatewayUnavailable)},
			want:       failed(payment.ReasonGatewayError, ""),
			wantEvents: failedEvent(payment.ReasonGatewayError),
		},
		{
			name:       "rejected request",
			p:          authorizing(),
			outcome:    payment.Outcome{Err: fmt.Errorf("charge pay:o1: %w", payment.ErrGatewayRejected)},
			want:       failed(payment.ReasonGatewayError, ""),
			wantEvents: failedEvent(payment.ReasonGatewayError),
		},
		{
			name:    "late answer never moves a failed payment",
			p:       failed(payment.ReasonCardDeclined, "ch_2"),
			outcome: payment.Outcome{Result: payment.ChargeResult{ChargeID: "ch_9", Status: payment.ChargeStatusApproved}},
			want:    failed(payment.ReasonCardDeclined, "ch_2"),
		},
		{
			name:    "late answer never moves a canceled payment",
			p:       payment.Payment{OrderID: "o1", Status: payment.StatusCanceled},
			outcome: payment.Outcome{Result: payment.ChargeResult{ChargeID: "ch_9", Status: payment.ChargeStatusApproved}},
			want:    payment.Payment{OrderID: "o1", Status: payment.StatusCanceled},
		},
		{
			name:    "late answer never moves a voided payment",
			p:       with(authorizing(), func(p *payment.Payment) { p.Status, p.PgTxnID = payment.StatusVoided, "ch_1" }),
			outcome: payment.Outcome{Err: payment.ErrGatewayTimeout},
			want:    with(authorizing(), func(p *payment.Payment) { p.Status, p.PgTxnID = payment.StatusVoided, "ch_1" }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, events := tt.p.Settle(tt.outcome)
			if got != tt.want {
				t.Errorf("Settle = %+v, want %+v", got, tt.want)
			}
			if !reflect.DeepEqual(events, tt.wantEvents) {
				t.Errorf("events = %+v, want %+v", events, tt.wantEvents)
			}
		})
	}
}

func TestOutcomeUnknown(t *testing.T) {
	tests := []struct {
		name string
		o    payment.Outcome
		want bool
	}{
		{name: "answered", o: payment.Outcome{Result: payment.ChargeResult{Status: payment.ChargeStatusApproved}}},
		{name: "timeout", o: payment.Outcome{Err: fmt.Errorf("x: %w", payment.ErrGatewayTimeout)}, want: true},
		{name: "unavailable", o: payment.Outcome{Err: fmt.Errorf("x: %w", payment.ErrGatewayUnavailable)}, want: true},
		{name: "rejected", o: payment.Outcome{Err: fmt.Errorf("x: %w", payment.ErrGatewayRejected)}},
		{name: "other", o: payment.Outcome{Err: errors.New("boom")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.o.Unknown(); got != tt.want {
				t.Fatalf("Unknown = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVoid(t *testing.T) {
	authorized := with(authorizing(), func(p *payment.Payment) { p.Status, p.PgTxnID = payment.StatusAuthorized, "ch_1" })
	voided := with(authorized, func(p *payment.Payment) { p.Status = payment.StatusVoided })
	voidedRes := payment.ChargeResult{ChargeID: "ch_1", Status: payment.ChargeStatusVoided}
	tests := []struct {
		name       string
		p          payment.Payment
		res        payment.ChargeResult
		want       payment.Payment
		wantEvents []messaging.Event
		wantErr    bool
	}{
		{
			name: "authorized becomes voided",
			p:    authorized,
			res:  voidedRes,
			want: voided,
			wantEvents: []messaging.Event{{Type: payment.EventPaymentVoided, Data: payment.PaymentVoided{
				OrderID: "o1", Amount: 39000, Currency: "KRW", PgTxnID: "ch_1"}}},
		},
		{name: "voided twice emits once", p: voided, res: voidedRes, want: voided},
		{name: "failed stays failed", p: with(authorizing(), func(p *payment.Payment) { p.Status = payment.StatusFailed }), res: voidedRes,
			want: with(authorizing(), func(p *payment.Payment) { p.Status = payment.StatusFailed })},
		{name: "gateway still approved", p: authorized, res: payment.ChargeResult{ChargeID: "ch_1", Status: payment.ChargeStatusApproved},
			want: authorized, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, events, err := tt.p.Void(tt.res)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Void error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want || !reflect.DeepEqual(events, tt.wantEvents) {
				t.Fatalf("Void = %+v, %+v; want %+v, %+v", got, events, tt.want, tt.wantEvents)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	status := func(s payment.Status) *payment.Payment {
		return new(with(authorizing(), func(p *payment.Payment) { p.Status = s }))
	}
	tests := []struct {
		name      string
		found     *payment.Payment
		wantStore *payment.Payment
		wantAct   payment.CancelAction
	}{
		{name: "before StockReserved: remembered", wantStore: &payment.Payment{OrderID: "o1", Status: payment.StatusCanceled}},
		{name: "during the charge: deferred", found: status(payment.StatusAuthorizing),
			wantStore: new(with(authorizing(), func(p *payment.Payment) { p.CancelRequested = true }))},
		{name: "after approval: void", found: status(payment.StatusAuthorized), wantAct: payment.CancelVoid},
		{name: "failed: nothing", found: status(payment.StatusFailed)},
		{name: "voided: nothing", found: status(payment.StatusVoided)},
		{name: "canceled twice: nothing", found: status(payment.StatusCanceled)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, act := payment.Cancel(tt.found, "o1")
			if !reflect.DeepEqual(store, tt.wantStore) || act != tt.wantAct {
				t.Fatalf("Cancel = %+v, %v; want %+v, %v", store, act, tt.wantStore, tt.wantAct)
			}
		})
	}
}

func TestVoidPending(t *testing.T) {
	tests := []struct {
		name string
		p    payment.Payment
		want bool
	}{
		{name: "authorized, canceled meanwhile", p: payment.Payment{Status: payment.StatusAuthorized, CancelRequested: true}, want: true},
		{name: "authorized", p: payment.Payment{Status: payment.StatusAuthorized}},
		{name: "failed, canceled meanwhile", p: payment.Payment{Status: payment.StatusFailed, CancelRequested: true}},
		{name: "authorizing, canceled meanwhile", p: payment.Payment{Status: payment.StatusAuthorizing, CancelRequested: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.VoidPending(); got != tt.want {
				t.Fatalf("VoidPending = %v, want %v", got, tt.want)
			}
		})
	}
}

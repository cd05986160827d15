package app_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"outboxsaga.dev/gatewaysim"
	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/kafka"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/payment"
)

// o2 is another order (events carry uuids as order ids).
const o2 = "0b9c6a1e-2f3d-4e5a-8b7c-000000000002"

// deadLettered returns the errors of the payment service's dead letters of orderID, oldest first.
func (f *fixture) deadLettered(t *testing.T, orderID string) []string {
	t.Helper()
	rows, err := f.db.Query(`SELECT error FROM dead_letters WHERE service = 'payment' AND key = $1 ORDER BY id`, orderID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGatewayMismatch: an answer to the charge that is not about the order's charge (another
// amount, currency, order, key, or a status its HTTP status cannot carry), on the first call, a
// replay after a crash, or a key another party charged first, is never an authorization: the
// payment FAILS with GATEWAY_MISMATCH (PaymentFailed, never PaymentAuthorized), the key is voided
// so the failed order keeps no approved charge, and an operator is alerted: a dead letter and its
// DeadLettered event. A redelivery changes nothing and alerts no more.
func TestGatewayMismatch(t *testing.T) {
	tests := []struct {
		name string
		lie  map[string]any // the gateway's answer to POST /charges carries these fields
		// before runs before the delivery: a charge that is already in the ledger.
		before     func(t *testing.T, f *fixture)
		wantCharge gatewaysim.Charge // status and amount of the key's charge afterwards
	}{
		{name: "amount 1", lie: map[string]any{"amount": 1},
			wantCharge: gatewaysim.Charge{Status: gatewaysim.StatusVoided, Amount: 39000}},
		{name: "another currency", lie: map[string]any{"currency": "USD"},
			wantCharge: gatewaysim.Charge{Status: gatewaysim.StatusVoided, Amount: 39000}},
		{name: "another order", lie: map[string]any{"orderId": o2},
			wantCharge: gatewaysim.Charge{Status: gatewaysim.StatusVoided, Amount: 39000}},
		{name: "another key", lie: map[string]any{"idempotencyKey": "pay:" + o2},
			wantCharge: gatewaysim.Charge{Status: gatewaysim.StatusVoided, Amount: 39000}},
		{name: "a new charge that is not approved", lie: map[string]any{"status": "DECLINED"},
			wantCharge: gatewaysim.Charge{Status: gatewaysim.StatusVoided, Amount: 39000}},
		{
			name: "replay of amount 1 after a crash", lie: map[string]any{"amount": 1},
			before: func(t *testing.T, f *fixture) {
				// Steps 1-2 ran, the gateway approved the order's charge, and the process died.
				_, _, p := f.admitted(t)
				if _, err := f.app.Charge(f.Ctx(), p); err != nil {
					t.Fatal(err)
				}
			},
			wantCharge: gatewaysim.Charge{Status: gatewaysim.StatusVoided, Amount: 39000},
		},
		{
			// The attack, by someone who holds the merchant secret: a charge of 1 under
			// the order's key before the payment service's. The gateway refuses the order's
			// charge (409); the charge of 1 is voided.
			name: "the key charged first with amount 1",
			before: func(t *testing.T, f *fixture) {
				if _, err := f.ledger.Charge(context.Background(), gatewaysim.ChargeRequest{OrderID: o1, IdempotencyKey: "pay:" + o1,
					Amount: 1, Currency: "KRW", Token: gatewaysim.TokenOK}); err != nil {
					t.Fatal(err)
				}
			},
			wantCharge: gatewaysim.Charge{Status: gatewaysim.StatusVoided, Amount: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, options{})
			m := f.stockReserved(t, o1, "tok_ok")
			if tt.before != nil {
				tt.before(t, f)
			}
			if tt.lie != nil {
				f.lieOn("/charges", tt.lie)
			}

			f.mustDeliver(t, m)

			p := f.payment(t, o1)
			if p.Status != payment.StatusFailed || p.Reason != payment.ReasonGatewayMismatch {
				t.Fatalf("payment = %+v, want FAILED GATEWAY_MISMATCH", p)
			}
			events := pgtest.Emitted(t, f.db, o1)
			if got := pgtest.Types(events); !slices.Equal(got, []string{"DeadLettered", failed}) {
				t.Fatalf("events = %v, want [DeadLettered PaymentFailed]: an alert, and never PaymentAuthorized", got)
			}
			checkData(t, events[1].Envelope, p)
			dls := f.deadLettered(t, o1)
			if len(dls) != 1 || !strings.Contains(dls[0], "does not match") {
				t.Fatalf("dead letters = %q, want one naming the mismatch", dls)
			}
			ledger := f.ledger.List(o1)
			if len(ledger) != 1 || ledger[0].Status != tt.wantCharge.Status || ledger[0].Amount != tt.wantCharge.Amount {
				t.Fatalf("ledger = %+v, want one %s charge of %d", ledger, tt.wantCharge.Status, tt.wantCharge.Amount)
			}
			if !f.processed(t, m) {
				t.Fatal("event not in the inbox")
			}

			// A redelivery changes nothing and alerts no more.
			f.mustDeliver(t, m)
			if again := f.payment(t, o1); again != p {
				t.Fatalf("after redelivery payment = %+v, want %+v", again, p)
			}
			if n := len(pgtest.Emitted(t, f.db, o1)); n != 2 {
				t.Fatalf("after redelivery %d events, want 2", n)
			}
			if n := len(f.deadLettered(t, o1)); n != 1 {
				t.Fatalf("after redelivery %d dead letters, want 1", n)
			}
		})
	}
}

// TestLostAnswerThenMismatchedVoid: the charge's answer is lost (the gateway is down) and the
// void that follows answers about another amount: a mismatch too, never a plain timeout.
func TestLostAnswerThenMismatchedVoid(t *testing.T) {
	f := newFixture(t, options{clientAttempts: 2})
	f.chargesDown.Store(true)
	f.lieOn("/charges/void", map[string]any{"amount": 1, "currency": "KRW"})
	m := f.stockReserved(t, o1, "tok_ok")

	f.mustDeliver(t, m)
	if p := f.payment(t, o1); p.Status != payment.StatusFailed || p.Reason != payment.ReasonGatewayMismatch {
		t.Fatalf("payment = %+v, want FAILED GATEWAY_MISMATCH", p)
	}
	if n := len(f.deadLettered(t, o1)); n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}
}

// TestCancelVoidMismatchIsPoison: the void of an authorized payment answers about another
// charge (another amount, still APPROVED, another order): the payment is not recorded VOIDED;
// the OrderCanceled is poison, which the consumer dead-letters, alerting an operator.
func TestCancelVoidMismatchIsPoison(t *testing.T) {
	tests := []struct {
		name string
		lie  map[string]any
	}{
		{name: "another amount", lie: map[string]any{"amount": 1}},
		{name: "still approved", lie: map[string]any{"status": "APPROVED"}},
		{name: "another order", lie: map[string]any{"orderId": o2}},
		{name: "another charge", lie: map[string]any{"chargeId": "ch_other"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, options{})
			f.mustDeliver(t, f.stockReserved(t, o1, "tok_ok"))
			cancel := f.orderCanceled(t, o1)
			f.lieOn("/charges/void", tt.lie)

			if err := f.deliver(cancel); !messaging.IsPermanent(err) {
				t.Fatalf("deliver = %v, want poison", err)
			}
			// The consumer's dead-letter middleware stores it: the alert.
			dlq := messaging.Chain(f.steps.Router().Dispatch, kafka.DeadLetter(f.deadLetters, "payment"), kafka.DecodeKeyed(f.Validator, f.Router.Keyed()))
			if err := dlq(f.Ctx(), cancel.Message()); err != nil {
				t.Fatalf("dead-letter chain = %v", err)
			}
			if p := f.payment(t, o1); p.Status != payment.StatusAuthorized || f.processed(t, cancel) {
				t.Fatalf("payment = %+v (cancel processed %v), want AUTHORIZED and the cancel not taken", p, f.processed(t, cancel))
			}
			if got := pgtest.Types(pgtest.Emitted(t, f.db, o1)); !slices.Equal(got, []string{authorized, "DeadLettered"}) {
				t.Fatalf("events = %v, want [PaymentAuthorized DeadLettered]", got)
			}
		})
	}
}

// TestGatewayRefusesTheSecret: a gateway that answers 401 (a wrong or missing
// PAYMENT_GATEWAY_SECRET) is an outage: the step fails with an error the consumer retries until
// the gateway takes the secret (messaging.Outage), never poison; nothing is charged or recorded.
func TestGatewayRefusesTheSecret(t *testing.T) {
	f := newFixture(t, options{clientSecret: "not-the-secret"})
	m := f.stockReserved(t, o1, "tok_ok")

	err := f.deliver(m)
	if !messaging.IsOutage(err) || messaging.IsPermanent(err) || !strings.Contains(err.Error(), "merchant secret") {
		t.Fatalf("deliver = %v, want an outage about the merchant secret", err)
	}
	if p := f.payment(t, o1); p.Status != payment.StatusAuthorizing || f.processed(t, m) {
		t.Fatalf("payment = %+v, want AUTHORIZING and the event not processed", p)
	}
	if len(f.ledger.List("")) != 0 || len(pgtest.Emitted(t, f.db, o1)) != 0 || len(f.deadLettered(t, o1)) != 0 {
		t.Fatal("a refused call charged, emitted or dead-lettered something")
	}
}

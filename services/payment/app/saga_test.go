package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"outboxsaga.dev/gatewaysim"
	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/eventually"
	"outboxsaga.dev/messaging/kafka"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/payment"
)

// o1 is the order of the tests (events carry uuids as order ids).
const o1 = "0b9c6a1e-2f3d-4e5a-8b7c-000000000001"

const (
	authorized = payment.EventPaymentAuthorized
	failed     = payment.EventPaymentFailed
	voided     = payment.EventPaymentVoided
)

func TestStockReserved(t *testing.T) {
	tests := []struct {
		name, token string
		opts        options
		chargesDown bool
		wantStatus  payment.Status
		wantReason  string
		wantEvent   string
		wantCharge  gatewaysim.Status
	}{
		{name: "approved", token: "tok_ok", wantStatus: payment.StatusAuthorized, wantEvent: authorized, wantCharge: gatewaysim.StatusApproved},
		{name: "declined", token: "tok_declined", wantStatus: payment.StatusFailed, wantReason: "CARD_DECLINED", wantEvent: failed, wantCharge: gatewaysim.StatusDeclined},
		{name: "unknown token", token: "tok_unknown", wantStatus: payment.StatusFailed, wantReason: "CARD_DECLINED", wantEvent: failed, wantCharge: gatewaysim.StatusDeclined},
		{name: "flaky gateway approves on retry", token: "tok_flaky", wantStatus: payment.StatusAuthorized, wantEvent: authorized, wantCharge: gatewaysim.StatusApproved},
		{
			// The gateway still works on the charge when the client gives up; the void after the
			// last attempt leaves a placeholder that blocks its approval.
			name: "gateway timeout after all attempts: voided, then failed", token: "tok_timeout",
			opts:       options{hold: true, clientTimeout: 300 * time.Millisecond, clientAttempts: 1},
			wantStatus: payment.StatusFailed, wantReason: "GATEWAY_TIMEOUT", wantEvent: failed, wantCharge: gatewaysim.StatusVoided,
		},
		{
			name: "gateway down after all attempts: voided, then failed", token: "tok_ok", chargesDown: true,
			wantStatus: payment.StatusFailed, wantReason: "GATEWAY_ERROR", wantEvent: failed, wantCharge: gatewaysim.StatusVoided,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts)
			f.chargesDown.Store(tt.chargesDown)
			m := f.stockReserved(t, o1, tt.token)
			f.mustDeliver(t, m)

			p := f.payment(t, o1)
			if p.Status != tt.wantStatus || p.Reason != tt.wantReason || p.Amount != 39000 || p.Currency != "KRW" {
				t.Fatalf("payment = %+v, want %s %q", p, tt.wantStatus, tt.wantReason)
			}
			ledger := f.ledger.List(o1)
			if len(ledger) != 1 || ledger[0].Status != tt.wantCharge || ledger[0].IdempotencyKey != "pay:"+o1 {
				t.Fatalf("ledger = %+v, want one %s charge with key pay:o1", ledger, tt.wantCharge)
			}
			if p.Status == payment.StatusAuthorized && p.PgTxnID != ledger[0].ID {
				t.Fatalf("pgTxnId = %q, want the gateway's charge id %q", p.PgTxnID, ledger[0].ID)
			}
			events := pgtest.Emitted(t, f.db, o1)
			if got := pgtest.Types(events); !slices.Equal(got, []string{tt.wantEvent}) {
				t.Fatalf("events = %v, want [%s]", got, tt.wantEvent)
			}
			checkData(t, events[0].Envelope, p)
			if !f.processed(t, m) {
				t.Fatal("event not in the inbox")
			}

			// Re-delivery of the same event id changes nothing.
			f.chargesDown.Store(false)
			f.mustDeliver(t, m)
			if again := f.payment(t, o1); again != p {
				t.Fatalf("after redelivery payment = %+v, want %+v", again, p)
			}
			if n := len(pgtest.Emitted(t, f.db, o1)); n != 1 {
				t.Fatalf("after redelivery %d events, want 1", n)
			}
			if again := f.ledger.List(o1); len(again) != 1 || again[0] != ledger[0] {
				t.Fatalf("after redelivery ledger = %+v, want %+v", again, ledger)
			}
		})
	}
}

// checkData checks an emitted event's data against the payment it announces.
func checkData(t *testing.T, e messaging.Envelope, p payment.Payment) {
	t.Helper()
	var d struct {
		OrderID  string `json:"orderId"`
		Reason   string `json:"reason"`
		Amount   int64  `json:"amount"`
		Currency string `json:"currency"`
		PgTxnID  string `json:"pgTxnId"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatal(err)
	}
	wantTxn := p.PgTxnID
	if e.EventType == failed {
		wantTxn = ""
	}
	if e.AggregateType != "payment" || e.AggregateID != p.OrderID || e.IdempotencyKey != p.OrderID+"#"+e.EventType+"#1" ||
		d.OrderID != p.OrderID || d.Reason != p.Reason || d.Amount != p.Amount || d.Currency != p.Currency || d.PgTxnID != wantTxn {
		t.Fatalf("%s = %+v data %+v; does not match payment %+v", e.EventType, e, d, p)
	}
}

// TestCrashBetweenApprovalAndRecording runs steps 1 and 2 (the gateway approves), loses the
// process before step 3, and redelivers the event: the gateway is asked again with the same key
// and the order is charged once, announced once.
func TestCrashBetweenApprovalAndRecording(t *testing.T) {
	f := newFixture(t, options{})
	ctx := f.Ctx()
	raw, _, p := f.admitted(t)
	if _, err := f.app.Charge(ctx, p); err != nil {
		t.Fatal(err)
	}
	// Crash: no settle. The event is not in the inbox, the payment still AUTHORIZING.
	if f.processed(t, raw) || f.payment(t, o1).Status != payment.StatusAuthorizing {
		t.Fatal("steps 1-2 marked the event or settled the payment")
	}

	f.mustDeliver(t, raw)
	if got := f.charges(o1); !slices.Equal(got, []gatewaysim.Status{gatewaysim.StatusApproved}) {
		t.Fatalf("ledger = %v, want one APPROVED charge", got)
	}
	if got := pgtest.Types(pgtest.Emitted(t, f.db, o1)); !slices.Equal(got, []string{authorized}) {
		t.Fatalf("events = %v, want one PaymentAuthorized", got)
	}
	if p := f.payment(t, o1); p.Status != payment.StatusAuthorized || p.PgTxnID != f.ledger.List(o1)[0].ID {
		t.Fatalf("payment = %+v", p)
	}
}

// TestVoidFailureIsRetried: when neither the charge nor the void gets through, the step fails
// (the message comes again) without recording anything; the redelivery then charges once.
func TestVoidFailureIsRetried(t *testing.T) {
	f := newFixture(t, options{clientAttempts: 2})
	f.chargesDown.Store(true)
	f.voidsDown.Store(true)
	m := f.stockReserved(t, o1, "tok_ok")

	err := f.deliver(m)
	if err == nil || messaging.IsPermanent(err) || !errors.Is(err, payment.ErrGatewayUnavailable) {
		t.Fatalf("deliver = %v, want a retryable gateway error", err)
	}
	if f.processed(t, m) || f.payment(t, o1).Status != payment.StatusAuthorizing || len(pgtest.Emitted(t, f.db, o1)) != 0 {
		t.Fatal("a failed void recorded something")
	}

	f.chargesDown.Store(false)
	f.voidsDown.Store(false)
	f.mustDeliver(t, m)
	if p := f.payment(t, o1); p.Status != payment.StatusAuthorized {
		t.Fatalf("after redelivery status %s, want AUTHORIZED", p.Status)
	}
	if got := f.charges(o1); !slices.Equal(got, []gatewaysim.Status{gatewaysim.StatusApproved}) {
		t.Fatalf("ledger = %v, want one APPROVED charge", got)
	}
}

// TestOrderCanceled plays StockReserved and OrderCanceled in every order of arrival, with
// redeliveries and late events, and checks the end state, the events and the gateway's ledger.
func TestOrderCanceled(t *testing.T) {
	tests := []struct {
		name       string
		token      string
		steps      []string
		wantStatus payment.Status
		wantEvents []string
		wantLedger []gatewaysim.Status
	}{
		{name: "cancel before StockReserved: nothing charged", token: "tok_ok",
			steps: []string{"canceled", "reserved"}, wantStatus: payment.StatusCanceled},
		{name: "cancel before StockReserved, both redelivered", token: "tok_ok",
			steps: []string{"canceled", "reserved", "canceled", "reserved"}, wantStatus: payment.StatusCanceled},
		{name: "cancel after approval: voided", token: "tok_ok",
			steps: []string{"reserved", "canceled"}, wantStatus: payment.StatusVoided,
			wantEvents: []string{authorized, voided}, wantLedger: []gatewaysim.Status{gatewaysim.StatusVoided}},
		{name: "cancel after approval, redelivered: voided once", token: "tok_ok",
			steps: []string{"reserved", "canceled", "canceled", "canceled2"}, wantStatus: payment.StatusVoided,
			wantEvents: []string{authorized, voided}, wantLedger: []gatewaysim.Status{gatewaysim.StatusVoided}},
		{name: "late StockReserved never moves a voided payment", token: "tok_ok",
			steps: []string{"reserved", "canceled", "reserved", "reserved2"}, wantStatus: payment.StatusVoided,
			wantEvents: []string{authorized, voided}, wantLedger: []gatewaysim.Status{gatewaysim.StatusVoided}},
		{name: "cancel after decline: stays failed", token: "tok_declined",
			steps: []string{"reserved", "canceled", "reserved2"}, wantStatus: payment.StatusFailed,
			wantEvents: []string{failed}, wantLedger: []gatewaysim.Status{gatewaysim.StatusDeclined}},
		{name: "late StockReserved never moves a canceled payment", token: "tok_ok",
			steps: []string{"canceled", "canceled2", "reserved2"}, wantStatus: payment.StatusCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, options{})
			msgs := map[string]record{
				"reserved":  f.stockReserved(t, o1, tt.token),
				"reserved2": f.stockReserved(t, o1, tt.token),
				"canceled":  f.orderCanceled(t, o1),
				"canceled2": f.orderCanceled(t, o1),
			}
			for _, s := range tt.steps {
				f.mustDeliver(t, msgs[s])
				if !f.processed(t, msgs[s]) {
					t.Fatalf("%s not in the inbox", s)
				}
			}
			if p := f.payment(t, o1); p.Status != tt.wantStatus {
				t.Fatalf("status %s, want %s", p.Status, tt.wantStatus)
			}
			if got := pgtest.Types(pgtest.Emitted(t, f.db, o1)); !slices.Equal(got, tt.wantEvents) {
				t.Fatalf("events = %v, want %v", got, tt.wantEvents)
			}
			if got := f.charges(o1); !slices.Equal(got, tt.wantLedger) {
				t.Fatalf("ledger = %v, want %v", got, tt.wantLedger)
			}
		})
	}
}

// TestCancelVoidFailureIsRetried: a cancel whose void does not get through records nothing and
// comes again; the redelivery voids.
func TestCancelVoidFailureIsRetried(t *testing.T) {
	f := newFixture(t, options{clientAttempts: 2})
	f.mustDeliver(t, f.stockReserved(t, o1, "tok_ok"))
	cancel := f.orderCanceled(t, o1)

	f.voidsDown.Store(true)
	if err := f.deliver(cancel); err == nil || messaging.IsPermanent(err) {
		t.Fatalf("deliver = %v, want a retryable error", err)
	}
	if f.processed(t, cancel) || f.payment(t, o1).Status != payment.StatusAuthorized {
		t.Fatal("a failed void recorded something")
	}

	f.voidsDown.Store(false)
	f.mustDeliver(t, cancel)
	if p := f.payment(t, o1); p.Status != payment.StatusVoided || !f.processed(t, cancel) {
		t.Fatalf("status %s, want VOIDED and the cancel in the inbox", p.Status)
	}
	if got := f.charges(o1); !slices.Equal(got, []gatewaysim.Status{gatewaysim.StatusVoided}) {
		t.Fatalf("ledger = %v, want VOIDED", got)
	}
}

// TestCancelDuringCharge delivers OrderCanceled while StockReserved's gateway call is in flight
// (tok_timeout holds it): the charge is approved, recorded, and voided right after.
func TestCancelDuringCharge(t *testing.T) {
	f := newFixture(t, options{hold: true, clientTimeout: 5 * time.Second})
	reserved := f.stockReserved(t, o1, "tok_timeout")
	canceled := f.orderCanceled(t, o1)

	var (
		wg         sync.WaitGroup
		reserveErr error
	)
	wg.Go(func() { reserveErr = f.deliver(reserved) })
	eventually.Holds(t, 5*time.Second, func() string {
		if p := f.payment(t, o1); p.Status != payment.StatusAuthorizing {
			return fmt.Sprintf("payment %+v, want AUTHORIZING", p)
		}
		return ""
	})

	f.mustDeliver(t, canceled)
	if p := f.payment(t, o1); p.Status != payment.StatusAuthorizing || !p.CancelRequested {
		t.Fatalf("during the charge: %+v, want AUTHORIZING with the cancel requested", p)
	}
	if len(f.ledger.List(o1)) != 0 {
		t.Fatal("the charge landed before the cancel; the test did not overlap them")
	}

	f.release() // the gateway approves the charge
	wg.Wait()
	if reserveErr != nil {
		t.Fatal(reserveErr)
	}
	if p := f.payment(t, o1); p.Status != payment.StatusVoided {
		t.Fatalf("status %s, want VOIDED", p.Status)
	}
	if got := pgtest.Types(pgtest.Emitted(t, f.db, o1)); !slices.Equal(got, []string{authorized, voided}) {
		t.Fatalf("events = %v, want [PaymentAuthorized PaymentVoided]", got)
	}
	if got := f.charges(o1); !slices.Equal(got, []gatewaysim.Status{gatewaysim.StatusVoided}) {
		t.Fatalf("ledger = %v, want VOIDED", got)
	}
	if !f.processed(t, reserved) || !f.processed(t, canceled) {
		t.Fatal("both events must be in the inbox")
	}
}

// TestCrashBeforeDeferredVoid: the charge was settled AUTHORIZED with a cancel pending, and the
// process died before voiding. The redelivered StockReserved (already in the inbox) voids.
func TestCrashBeforeDeferredVoid(t *testing.T) {
	f := newFixture(t, options{})
	ctx := f.Ctx()
	raw, m, p := f.admitted(t)
	f.mustDeliver(t, f.orderCanceled(t, o1))
	o, err := f.app.Charge(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.app.Settle(ctx, m, o, o1); err != nil {
		t.Fatal(err)
	}
	// Crash: no step 4.
	if p := f.payment(t, o1); !p.VoidPending() {
		t.Fatalf("payment = %+v, want AUTHORIZED with a cancel pending", p)
	}

	f.mustDeliver(t, raw)
	if p := f.payment(t, o1); p.Status != payment.StatusVoided {
		t.Fatalf("status %s, want VOIDED", p.Status)
	}
	if got := f.charges(o1); !slices.Equal(got, []gatewaysim.Status{gatewaysim.StatusVoided}) {
		t.Fatalf("ledger = %v, want VOIDED", got)
	}
	if got := pgtest.Types(pgtest.Emitted(t, f.db, o1)); !slices.Equal(got, []string{authorized, voided}) {
		t.Fatalf("events = %v", got)
	}
}

func TestRouter(t *testing.T) {
	f := newFixture(t, options{})
	tests := []struct {
		name          string
		m             *messaging.Message
		wantPermanent bool
	}{
		{name: "ignored event", m: &messaging.Message{Envelope: messaging.Envelope{EventType: "StockReleased", EventVersion: 1}}},
		{name: "a SKU sold out: not payment's", m: &messaging.Message{Envelope: messaging.Envelope{EventType: "StockDepleted", EventVersion: 1}}},
		{name: "a SKU back in stock: not payment's", m: &messaging.Message{Envelope: messaging.Envelope{EventType: "StockReplenished", EventVersion: 1}}},
		{name: "ignored order event", m: &messaging.Message{Envelope: messaging.Envelope{EventType: "OrderCompleted", EventVersion: 1}}},
		{name: "unknown event", m: &messaging.Message{Envelope: messaging.Envelope{EventType: "StockExploded", EventVersion: 1}}, wantPermanent: true},
		{name: "unknown version", m: &messaging.Message{Envelope: messaging.Envelope{EventType: "StockReserved", EventVersion: 2}}, wantPermanent: true},
		{name: "undecodable data", m: &messaging.Message{Envelope: messaging.Envelope{EventType: "StockReserved", EventVersion: 1,
			Data: json.RawMessage(`"nope"`)}}, wantPermanent: true},
		{name: "undecodable cancel data", m: &messaging.Message{Envelope: messaging.Envelope{EventType: "OrderCanceled", EventVersion: 1,
			Data: json.RawMessage(`[]`)}}, wantPermanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.steps.Router().Dispatch(context.Background(), tt.m)
			if messaging.IsPermanent(err) != tt.wantPermanent || (!tt.wantPermanent && err != nil) {
				t.Fatalf("Dispatch = %v, want permanent %v", err, tt.wantPermanent)
			}
		})
	}
}

// TestStepsNeverJoinABatch: both steps call the gateway outside any transaction, so inside a
// batch the Router refuses them before they run (nothing charged, nothing stored), while the
// events payment ignores pass. A consumer with a batch size (kafka.HandleBatch) then runs each
// step on its own, and charges as one by one.
func TestStepsNeverJoinABatch(t *testing.T) {
	f := newFixture(t, options{})
	chain := messaging.Chain(f.steps.Router().Dispatch, kafka.DecodeKeyed(f.Validator, f.Router.Keyed()))
	ignored := func() *messaging.Message {
		return event(t, "order", "OrderCompleted", o1, map[string]any{
			"orderId": o1, "items": items, "amount": 39000, "currency": "KRW"}).Message()
	}
	inBatch, _ := messaging.WithBatch(f.Ctx())
	for _, m := range []*messaging.Message{f.stockReserved(t, o1, "tok_ok").Message(), f.orderCanceled(t, o1).Message()} {
		if err := chain(inBatch, m); !errors.Is(err, messaging.ErrNotBatchable) {
			t.Errorf("%s in a batch: %v, want ErrNotBatchable", m.Headers["eventType"], err)
		}
	}
	if p, ledger := f.payment(t, o1), f.ledger.List(o1); p.Status != "" || len(ledger) != 0 {
		t.Fatalf("a refused step ran: payment %+v, ledger %+v", p, ledger)
	}
	if err := chain(inBatch, ignored()); err != nil {
		t.Errorf("an ignored event in a batch: %v", err)
	}

	ms := []*messaging.Message{ignored(), f.stockReserved(t, o1, "tok_ok").Message(), ignored()}
	done := 0
	if err := kafka.HandleBatch(f.Ctx(), chain, msgpg.Batches(f.db), ms, func(int) { done++ }); err != nil || done != len(ms) {
		t.Fatalf("HandleBatch = %v after %d messages done, want nil after %d", err, done, len(ms))
	}
	if p, ledger := f.payment(t, o1), f.ledger.List(o1); p.Status != payment.StatusAuthorized || len(ledger) != 1 {
		t.Fatalf("payment %+v, ledger %+v; want AUTHORIZED by one charge", p, ledger)
	}
}

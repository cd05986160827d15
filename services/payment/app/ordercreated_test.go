package app_test

import (
	"context"
	"testing"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/kafka"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/payment/postgres"
)

// o2created is a second order of TestOrderCreatedRemembersTheCustomer.
const o2created = "0b9c6a1e-2f3d-4e5a-8b7c-000000000002"

// TestOrderCreatedRemembersTheCustomer: OrderCreated records whose order it is, once, charges
// nothing and emits nothing; in a batch it joins the batch's transaction.
func TestOrderCreatedRemembersTheCustomer(t *testing.T) {
	f := newFixture(t, options{})
	created := func(customer string) record {
		return event(t, "order", "OrderCreated", o1, map[string]any{
			"orderId": o1, "customerId": customer, "items": items, "amount": 39000, "currency": "KRW", "paymentToken": "tok_ok"})
	}
	repo := postgres.NewPayments(f.db)
	if c, err := repo.CustomerOf(context.Background(), o1); err != nil || c != "" {
		t.Fatalf("CustomerOf before = %q, %v; want none", c, err)
	}
	first := created("U1")
	f.mustDeliver(t, first)
	f.mustDeliver(t, first)         // redelivered: the inbox skips it
	f.mustDeliver(t, created("U2")) // a forged second OrderCreated cannot change the customer
	if c, err := repo.CustomerOf(context.Background(), o1); err != nil || c != "U1" {
		t.Fatalf("CustomerOf = %q, %v; want U1", c, err)
	}
	if p, ledger := f.payment(t, o1), f.ledger.List(o1); p.Status != "" || len(ledger) != 0 {
		t.Fatalf("OrderCreated charged: payment %+v, ledger %+v", p, ledger)
	}
	if n := pgtest.Count(t, f.db, `SELECT count(*) FROM outbox_seen`); n != 0 {
		t.Fatalf("OrderCreated emitted %d events", n)
	}

	chain := messaging.Chain(f.steps.Router().Dispatch, kafka.DecodeKeyed(f.Validator, f.Router.Keyed()))
	ms := []*messaging.Message{
		event(t, "order", "OrderCreated", o2created, map[string]any{
			"orderId": o2created, "customerId": "U3", "items": items, "amount": 39000, "currency": "KRW", "paymentToken": "tok_ok"}).Message(),
	}
	if err := kafka.HandleBatch(f.Ctx(), chain, msgpg.Batches(f.db), ms, func(int) {}); err != nil {
		t.Fatalf("HandleBatch = %v", err)
	}
	if c, err := repo.CustomerOf(context.Background(), o2created); err != nil || c != "U3" {
		t.Fatalf("CustomerOf in a batch = %q, %v; want U3", c, err)
	}
}

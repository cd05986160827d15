package sagatest_test

import (
	"context"
	"database/sql"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/sagatest"
)

// migrations is a service with one table: the orders it has seen canceled.
var migrations = fstest.MapFS{"migrations/0001_seen.sql": {Data: []byte(`CREATE TABLE seen (order_id text PRIMARY KEY);`)}}

// kit is a service on the kit: OrderCanceled records the order and emits PaymentFailed about it,
// unless the reason is PAYMENT_FAILED (fault.Invalid: poison) or the order was seen (a conflict
// that is not poison here: nothing emitted). done counts the reports after commit.
type kit struct {
	h    *sagatest.Harness
	done []string
}

func newKit(t *testing.T) *kit {
	db := sagatest.Open(t, "kit", migrations)
	s := &msgpg.Saga{DB: db, Outbox: pgtest.MustOutbox(t), AggregateType: "payment", Version: 1}
	k := &kit{}
	type canceled struct {
		OrderID string `json:"orderId"`
		Reason  string `json:"reason"`
	}
	r := messaging.NewRouter()
	r.Key(messaging.Keyed{Field: "orderId"})
	r.HandleBatchable("OrderCanceled", 1, msgpg.Step(s, func(ctx context.Context, tx *sql.Tx, _ *messaging.Message, d canceled) (msgpg.Result, error) {
		if d.Reason == "PAYMENT_FAILED" {
			return msgpg.Result{}, fault.Errorf(fault.Invalid, "reason %s", d.Reason)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO seen VALUES ($1) ON CONFLICT DO NOTHING`, d.OrderID)
		if err != nil {
			return msgpg.Result{}, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return msgpg.Result{Done: func(*zerolog.Logger) { k.done = append(k.done, "seen "+d.OrderID) }}, nil
		}
		return msgpg.Result{
			Events: []messaging.Event{{Type: "PaymentFailed", Data: map[string]any{"orderId": d.OrderID, "reason": "ORDER_CANCELED", "amount": 1, "currency": "KRW"}}},
			Done:   func(*zerolog.Logger) { k.done = append(k.done, "failed "+d.OrderID) },
		}, nil
	}))
	k.h = sagatest.New(t, db, r)
	return k
}

func canceled(t *testing.T, orderID, reason string) sagatest.Record {
	return sagatest.Event(t, "order", "OrderCanceled", 1, orderID, map[string]any{
		"orderId": orderID, "reason": reason, "items": []any{map[string]any{"sku": "A", "qty": 1, "unitPrice": 1}},
	})
}

// TestStep: the step's change, its inbox row and its events commit together, in the consumed
// event's trace; a redelivery is skipped; Done runs once per applied event, after the commit.
func TestStep(t *testing.T) {
	k := newKit(t)
	o1, o2 := uuid.NewString(), uuid.NewString()
	first := canceled(t, o1, "TIMEOUT")
	k.h.MustDeliver(first, first, canceled(t, o1, "TIMEOUT"))
	emitted := k.h.Emitted(o1)
	if got := k.h.EmittedTypes(""); !slices.Equal(got, []string{"PaymentFailed"}) {
		t.Fatalf("emitted %v, want one PaymentFailed", got)
	}
	if emitted[0].TraceID != first.Traceparent.TraceID() || emitted[0].AggregateID != o1 {
		t.Errorf("emitted %+v, want about %s in trace %s", emitted[0].Envelope, o1, first.Traceparent.TraceID())
	}
	if !k.h.Processed(first) || !slices.Equal(k.done, []string{"failed " + o1, "seen " + o1}) {
		t.Fatalf("processed %v, done %v", k.h.Processed(first), k.done)
	}

	// Poison: the step's invalid, and a key field that contradicts the key.
	poison := canceled(t, o2, "PAYMENT_FAILED")
	if err := k.h.Deliver(poison); !messaging.IsPermanent(err) || k.h.Processed(poison) {
		t.Fatalf("invalid: %v (processed %v), want poison, not processed", err, k.h.Processed(poison))
	}
	forged := sagatest.Event(t, "order", "OrderCanceled", 1, o1, map[string]any{"orderId": o2, "reason": "TIMEOUT", "items": []any{map[string]any{"sku": "A", "qty": 1, "unitPrice": 1}}})
	if err := k.h.Deliver(forged); !messaging.IsPermanent(err) {
		t.Fatalf("forged key: %v, want poison", err)
	}
}

// TestStepInABatch: in a batch the reports wait for the commit, and a batch that fails rolls back
// whole, its messages then handled one by one (the poison one alone fails).
func TestStepInABatch(t *testing.T) {
	k := newKit(t)
	o1, o2, o3 := uuid.NewString(), uuid.NewString(), uuid.NewString()
	if err := k.h.DeliverBatch(canceled(t, o1, "TIMEOUT"), canceled(t, o2, "OUT_OF_STOCK")); err != nil {
		t.Fatal(err)
	}
	if len(k.h.Emitted("")) != 2 || len(k.done) != 2 {
		t.Fatalf("emitted %v, done %v; want two of each", k.h.EmittedTypes(""), k.done)
	}
	err := k.h.DeliverBatch(canceled(t, o3, "TIMEOUT"), canceled(t, o3, "PAYMENT_FAILED"))
	if !messaging.IsPermanent(err) {
		t.Fatalf("batch with poison: %v, want the poison's error", err)
	}
	if got := k.h.EmittedTypes(o3); len(got) != 1 || len(k.done) != 3 {
		t.Fatalf("after the poison batch: emitted %v for o3, done %v; want the first applied on its own", got, k.done)
	}
}

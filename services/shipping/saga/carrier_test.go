package saga_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"outboxsaga.dev/messaging/eventually"
	"outboxsaga.dev/messaging/fault"
	"outboxsaga.dev/shipping"
	"outboxsaga.dev/shipping/app"
)

// The carrier and an operator move a delivery one step at a time, forward only, never past
// DELIVERED; each move emits its event in the order's trace.
func TestMoves(t *testing.T) {
	f, id := newFixture(t), uuid.NewString()
	order := completed(t, id)
	f.MustDeliver(order)
	waiting, due := f.steps(time.Hour), f.steps(0)
	carrierMove := func(c *app.App) func() error {
		return func() error {
			n, err := c.AdvanceDue(context.Background())
			if err == nil && n > 1 {
				err = fmt.Errorf("moved %d deliveries, there is one", n)
			}
			return err
		}
	}
	operatorMove := func(orderID string) func() error {
		return func() error { _, err := waiting.Advance(context.Background(), orderID); return err }
	}
	tests := []struct {
		name       string
		move       func() error
		wantCode   string
		wantStatus shipping.Status
		wantEvent  string // the event the move emits, if any
	}{
		{name: "the carrier before a step has passed", move: carrierMove(waiting), wantStatus: shipping.StatusPreparing},
		{name: "the carrier once a step has passed", move: carrierMove(due), wantStatus: shipping.StatusShipped, wantEvent: shipping.EventDeliveryShipped},
		{name: "an operator, at once", move: operatorMove(id), wantStatus: shipping.StatusDelivered, wantEvent: shipping.EventDeliveryDelivered},
		{name: "the carrier after DELIVERED", move: carrierMove(due), wantStatus: shipping.StatusDelivered},
		{name: "an operator after DELIVERED", move: operatorMove(id), wantCode: fault.Conflict, wantStatus: shipping.StatusDelivered},
		{name: "an operator, an order without delivery", move: operatorMove(uuid.NewString()), wantCode: fault.NotFound, wantStatus: shipping.StatusDelivered},
	}
	want := []string{shipping.EventDeliveryScheduled}
	for _, tt := range tests {
		err := tt.move()
		if (err != nil || tt.wantCode != "") && fault.Code(err) != tt.wantCode {
			t.Fatalf("%s: error = %v, want %q", tt.name, err, tt.wantCode)
		}
		if tt.wantEvent != "" {
			want = append(want, tt.wantEvent)
		}
		if got := f.status(id); got != tt.wantStatus {
			t.Errorf("%s: status = %s, want %s", tt.name, got, tt.wantStatus)
		}
		if got := f.emitted(id, order.Traceparent); !slices.Equal(got, want) {
			t.Errorf("%s: emitted %v, want %v", tt.name, got, want)
		}
	}
	wantMetrics := `
		# HELP shipping_delivery_steps_total Deliveries that reached a status: PREPARING when scheduled, then SHIPPED and DELIVERED.
		# TYPE shipping_delivery_steps_total counter
		shipping_delivery_steps_total{status="DELIVERED"} 1
		shipping_delivery_steps_total{status="PREPARING"} 1
		shipping_delivery_steps_total{status="SHIPPED"} 1
	`
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(wantMetrics), "shipping_delivery_steps_total"); err != nil {
		t.Error(err)
	}
}

// Carriers running at once (several instances) move each due delivery exactly once, over more
// than one batch, and never one that is not due.
func TestCarriersAtOnceMoveEachDeliveryOnce(t *testing.T) {
	const deliveries, carriers = 250, 4
	f := newFixture(t)
	for range deliveries {
		f.MustDeliver(completed(t, uuid.NewString()))
	}
	f.MustDeliver(completed(t, uuid.NewString())) // scheduled just now: not due
	if _, err := f.db.Exec(`UPDATE deliveries SET updated_at = updated_at - interval '1 hour'
		WHERE order_id IN (SELECT order_id FROM deliveries ORDER BY created_at LIMIT $1)`, deliveries); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	moved := make([]int, carriers) // by each carrier
	for i := range moved {
		c := f.steps(30 * time.Minute)
		wg.Go(func() {
			for n := 1; n > 0; moved[i] += n {
				var err error
				if n, err = c.AdvanceDue(context.Background()); err != nil {
					t.Errorf("AdvanceDue() error = %v", err)
				}
			}
		})
	}
	wg.Wait()
	if total := sum(moved); total != deliveries {
		t.Errorf("carriers moved %v deliveries, %d in all, want %d", moved, total, deliveries)
	}
	for status, want := range map[shipping.Status]int{shipping.StatusShipped: deliveries, shipping.StatusPreparing: 1, shipping.StatusDelivered: 0} {
		if got := f.count(`SELECT count(*) FROM deliveries WHERE status = $1`, status); got != want {
			t.Errorf("%s deliveries = %d, want %d", status, got, want)
		}
	}
	for _, q := range []string{`SELECT count(*) FROM outbox_seen WHERE type = $1`, `SELECT count(DISTINCT aggregateid) FROM outbox_seen WHERE type = $1`} {
		if got := f.count(q, shipping.EventDeliveryShipped); got != deliveries {
			t.Errorf("%s: %d, want %d (one DeliveryShipped per delivery)", q, got, deliveries)
		}
	}
}

// A running carrier takes a delivery to DELIVERED, and stops when its context ends.
func TestCarrierRun(t *testing.T) {
	f, id := newFixture(t), uuid.NewString()
	f.MustDeliver(completed(t, id))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.steps(20 * time.Millisecond).Carry(ctx) }()
	eventually.Holds(t, 5*time.Second, func() string {
		if s := f.status(id); s != shipping.StatusDelivered {
			return "the delivery is " + string(s)
		}
		return ""
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Carry() = %v after cancel, want nil", err)
	}
}

func sum(ns []int) (total int) {
	for _, n := range ns {
		total += n
	}
	return total
}

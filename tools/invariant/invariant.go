// Package invariant checks the four invariants of DESIGN.md for the orders and SKUs a load run
// recorded, reading only public surfaces: the services' HTTP APIs, the gateway's ledger and
// the Kafka topics (plus the replication slots' lag, to know when the pipeline is quiet).
package invariant

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/IBM/sarama"

	"outboxsaga.dev/tools/load"
)

// Checker checks recorded orders against the running pipeline.
type Checker struct {
	Endpoints Endpoints
	Kafka     sarama.Client
	// Workers bounds the concurrent HTTP reads.
	Workers int
	// MaxSlotLag is the slot lag (bytes) below which the WAL side counts as quiet.
	MaxSlotLag int64
	// Log, when set, gets progress lines.
	Log io.Writer
}

func (c *Checker) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

func (c *Checker) workers() int { return max(c.Workers, 16) }

// Quiesce waits until every recorded order is terminal (a COMPLETED one also delivered, as the
// order service shows it: its delivery events, and their notifications, are the last the pipeline
// makes of it), every consumer group's lag is 0 and
// every slot's lag is under MaxSlotLag, or the timeout passes (then it says what is missing).
func (c *Checker) Quiesce(ctx context.Context, rec *load.Record, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	pending := make([]string, 0, len(rec.Orders))
	for _, o := range rec.Orders {
		pending = append(pending, o.ID)
	}
	var missing string
	for {
		var err error
		pending, err = c.stillPending(ctx, pending)
		switch {
		case err != nil:
			missing = err.Error()
		case len(pending) > 0:
			missing = fmt.Sprintf("%d orders not terminal or not delivered (e.g. %s)", len(pending), pending[0])
		default:
			missing = c.pipelineBusy(ctx)
		}
		if missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not quiet after %s: %s", timeout, missing)
		}
		c.logf("quiescence: waiting: %s", missing)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// stillPending returns the ids among ids whose order is not terminal yet, or completed and not
// delivered yet.
func (c *Checker) stillPending(ctx context.Context, ids []string) ([]string, error) {
	terminal := make([]bool, len(ids))
	err := parallel(ctx, len(ids), c.workers(), func(ctx context.Context, i int) error {
		o, err := c.Endpoints.Order(ctx, ids[i])
		if err != nil {
			return err
		}
		terminal[i] = Terminal(o.Status) && (o.Status != "COMPLETED" || o.Delivery == Delivered)
		return nil
	})
	if err != nil {
		return ids, err
	}
	var out []string
	for i, id := range ids {
		if !terminal[i] {
			out = append(out, id)
		}
	}
	return out, nil
}

// pipelineBusy says what still moves: consumer lag or slot lag ("" when quiet).
func (c *Checker) pipelineBusy(ctx context.Context) string {
	lag, err := GroupLag(c.Kafka)
	if err != nil {
		return err.Error()
	}
	for _, g := range slices.Sorted(maps.Keys(lag)) {
		if lag[g] > 0 {
			return fmt.Sprintf("consumer group %s lags %d records", g, lag[g])
		}
	}
	if c.Endpoints.PGAdminURL == "" {
		return ""
	}
	slots, err := Slots(ctx, c.Endpoints.PGAdminURL)
	if err != nil {
		return err.Error()
	}
	for _, s := range slots {
		if s.Lag > c.MaxSlotLag {
			return fmt.Sprintf("slot %s lags %d bytes", s.Name, s.Lag)
		}
	}
	return ""
}

// Snapshot is the business state of a run's orders and SKUs, as the public APIs show it.
type Snapshot struct {
	Orders  map[string]OrderView
	Stock   map[string]StockView
	Charges map[string][]Charge
}

// TakeSnapshot reads every recorded order, SKU and the ledger entries of every order.
func (c *Checker) TakeSnapshot(ctx context.Context, rec *load.Record) (*Snapshot, error) {
	s := &Snapshot{Orders: map[string]OrderView{}, Stock: map[string]StockView{}, Charges: map[string][]Charge{}}
	orders := make([]OrderView, len(rec.Orders))
	err := parallel(ctx, len(rec.Orders), c.workers(), func(ctx context.Context, i int) error {
		o, err := c.Endpoints.Order(ctx, rec.Orders[i].ID)
		orders[i] = o
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot orders: %w", err)
	}
	ledger, err := c.Endpoints.AllCharges(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot ledger: %w", err)
	}
	for i, o := range rec.Orders {
		cs := ledger[o.ID]
		sort.Slice(cs, func(a, b int) bool { return cs[a].ChargeID < cs[b].ChargeID })
		s.Orders[o.ID] = orders[i]
		s.Charges[o.ID] = cs
	}
	for sku := range rec.Stock {
		st, err := c.Endpoints.Stock(ctx, sku)
		if err != nil {
			return nil, fmt.Errorf("snapshot stock: %w", err)
		}
		s.Stock[sku] = st
	}
	return s, nil
}

// Diff lists what differs between two snapshots (nil when equal).
func (s *Snapshot) Diff(after *Snapshot) []string {
	var out []string
	for id, o := range s.Orders {
		if a := after.Orders[id]; a != o {
			out = append(out, fmt.Sprintf("order %s: %+v → %+v", id, o, a))
		}
		if !slices.Equal(s.Charges[id], after.Charges[id]) {
			out = append(out, fmt.Sprintf("charges of %s: %+v → %+v", id, s.Charges[id], after.Charges[id]))
		}
	}
	for sku, st := range s.Stock {
		if a := after.Stock[sku]; a != st {
			out = append(out, fmt.Sprintf("stock %s: %+v → %+v", sku, st, a))
		}
	}
	sort.Strings(out)
	return out
}

// SettledSnapshot takes snapshots settle apart until two in a row are equal, or timeout passes
// (then it returns the last one and says so). Quiesce cannot see an event that is committed to
// its service's outbox but not yet on Kafka: a slot's confirmed position moves only with
// Connect's offset flushes, so a small slot lag does not prove everything was published, and the
// last compensations (a stock commit or release, a void) may still be on their way.
func (c *Checker) SettledSnapshot(ctx context.Context, rec *load.Record, settle, timeout time.Duration) (*Snapshot, error) {
	deadline := time.Now().Add(timeout)
	last, err := c.TakeSnapshot(ctx, rec)
	if err != nil {
		return nil, err
	}
	for {
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(settle):
		}
		next, err := c.TakeSnapshot(ctx, rec)
		if err != nil {
			return nil, err
		}
		diff := last.Diff(next)
		if len(diff) == 0 {
			return next, nil
		}
		if time.Now().After(deadline) {
			return next, fmt.Errorf("state still changing after %s: %s", timeout, diff[0])
		}
		c.logf("quiescence: waiting: state still changing (%s)", diff[0])
		last = next
	}
}

// AwaitInvariants runs Check every few seconds until it finds no violation or timeout passes.
// Before a comparison (the replay phase's "before" snapshot) this is the strongest sign that
// every compensation has landed: a terminal order holding a reservation or a canceled order with
// an APPROVED charge means an event is still on its way. A real violation simply outlasts the
// timeout and is reported by the final check.
func (c *Checker) AwaitInvariants(ctx context.Context, rec *load.Record, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		res, err := c.Check(ctx, rec)
		if err != nil {
			return err
		}
		if res.OK() {
			return nil
		}
		if time.Now().After(deadline) {
			v := res.Violations[0]
			return fmt.Errorf("%d invariant violations after %s, e.g. invariant %d %s: %s", len(res.Violations), timeout, v.Invariant, v.Subject, v.Detail)
		}
		c.logf("quiescence: waiting: %d invariant violations still open (compensations on their way?)", len(res.Violations))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(3 * time.Second):
		}
	}
}

// Exit ends a command that gives a verdict on the invariants (checker, chaos): status 0 when ok,
// 1 when an invariant broke or a phase found a problem, 2 when the run itself failed (err).
func Exit(command string, ok bool, err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", command, err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
	os.Exit(0)
}

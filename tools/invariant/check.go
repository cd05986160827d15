package invariant

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"outboxsaga.dev/tools/load"
)

// Violation is one broken invariant.
type Violation struct {
	Invariant int
	Subject   string // an order id or a SKU
	Detail    string
}

// Result is what Check found.
type Result struct {
	Orders int
	SKUs   int
	// Checked counts the subjects each invariant was checked on; Violations lists what broke.
	Checked    map[int]int
	Violations []Violation
	// Kafka figures: records scanned for the run's orders, and event ids delivered more than once.
	KafkaRecords    int
	KafkaDuplicates int
	// DoubledEffects counts business effects applied twice (must be 0): a second distinct event of
	// the same type for one order, a second charge, more sold than completed.
	DoubledEffects int
	// Lost counts orders that did not reach a terminal status or whose events never reached Kafka.
	Lost int
	// DeadLettered counts saga events of these orders that a service put in its dead letters
	// (must be 0: a real event of a real order is never poison, so its step was never applied).
	DeadLettered int
	// NotificationRepeats counts POSTs to the webhook that repeated a key (allowed: at least once,
	// under the same key; a crash between the POST and its record makes one).
	NotificationRepeats int
	Statuses            map[string]int // "COMPLETED", "CANCELED/PAYMENT_FAILED", ...
}

// Count returns the number of violations of invariant n.
func (r *Result) Count(n int) int {
	c := 0
	for _, v := range r.Violations {
		if v.Invariant == n {
			c++
		}
	}
	return c
}

// Print writes one line per invariant and every violation.
func (r *Result) Print(w io.Writer) {
	fmt.Fprintf(w, "checked %d orders, %d SKUs; kafka: %d records, %d duplicate deliveries; doubled effects %d; lost %d; dead-lettered saga events %d; repeated webhook POSTs %d\n",
		r.Orders, r.SKUs, r.KafkaRecords, r.KafkaDuplicates, r.DoubledEffects, r.Lost, r.DeadLettered, r.NotificationRepeats)
	names := map[int]string{
		1: "one terminal status, never changes",
		2: "stock conserved, no reservation held by a terminal order",
		3: "at most one charge, none APPROVED when canceled, one of the amount when completed",
		4: "every event on its topic, every event id in effect at most once, none dead-lettered",
		5: "one delivery per completed order, forward only, none for a canceled one",
		6: "every notification at the webhook under its key, none for an event that did not happen",
		8: "catalog: units sold = completed orders', sold out iff available 0, the daily ranking = the orders'",
		9: "a completed order's charge is APPROVED, unvoided, of exactly its amount and currency",
	}
	numbers := make([]int, 0, len(names))
	for n := range names {
		numbers = append(numbers, n)
	}
	sort.Ints(numbers)
	for _, n := range numbers {
		fmt.Fprintf(w, "invariant %d (%s): checked %d, violations %d\n", n, names[n], r.Checked[n], r.Count(n))
	}
	for _, v := range r.Violations {
		fmt.Fprintf(w, "  VIOLATION invariant %d %s: %s\n", v.Invariant, v.Subject, v.Detail)
	}
}

// OK reports whether nothing was violated.
func (r *Result) OK() bool { return len(r.Violations) == 0 }

// Check checks the six invariants for rec. Call Quiesce first. Statuses are read twice (before and
// after the Kafka scan) to see that a terminal status does not change.
func (c *Checker) Check(ctx context.Context, rec *load.Record) (*Result, error) {
	r := &Result{Orders: len(rec.Orders), SKUs: len(rec.Stock), Checked: map[int]int{}, Statuses: map[string]int{}}
	first, err := c.TakeSnapshot(ctx, rec)
	if err != nil {
		return nil, err
	}
	events, err := c.scan(ctx, rec, r)
	if err != nil {
		return nil, err
	}
	time.Sleep(time.Second)
	second, err := c.TakeSnapshot(ctx, rec)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(rec.Orders))
	for i, o := range rec.Orders {
		ids[i] = o.ID
	}
	after, err := c.readAfterSaga(ctx, ids)
	if err != nil {
		return nil, err
	}
	add := func(n int, subject, format string, args ...any) {
		r.Violations = append(r.Violations, Violation{Invariant: n, Subject: subject, Detail: fmt.Sprintf(format, args...)})
	}
	for _, o := range rec.Orders {
		v1, v2, evs := first.Orders[o.ID], second.Orders[o.ID], events[o.ID]
		r.Statuses[statusKey(v2)]++
		c.checkTerminal(o, v1, v2, evs, r, add)
		c.checkCharges(o, v2, second.Charges[o.ID], r, add)
		c.checkEvents(o, v2, evs, r, add)
		r.Checked[5]++
		c.checkDelivery(o.ID, v2, evs, after[o.ID], add)
		r.Checked[6]++
		r.NotificationRepeats += c.checkNotifications(o.ID, v2, evs, after[o.ID], add)
	}
	c.checkStock(rec, second, r, add)
	if err := c.checkCatalog(ctx, rec, second, r, add); err != nil {
		return nil, err
	}
	if err := c.checkDeadLetters(ctx, rec, r, add); err != nil {
		return nil, err
	}
	sort.SliceStable(r.Violations, func(a, b int) bool { return r.Violations[a].Invariant < r.Violations[b].Invariant })
	return r, nil
}

func statusKey(o OrderView) string {
	if o.Reason == "" {
		return o.Status
	}
	return o.Status + "/" + o.Reason
}

type addFunc func(n int, subject, format string, args ...any)

// orderEvents is what Kafka holds for one order: the distinct event ids of each type, each with
// the offset of its first record.
type orderEvents map[string]map[string]int64

func (e orderEvents) has(t string) bool { return len(e[t]) > 0 }

// scan reads the topics and groups the run's events per order; it counts duplicate deliveries.
func (c *Checker) scan(ctx context.Context, rec *load.Record, r *Result) (map[string]orderEvents, error) {
	out := map[string]orderEvents{}
	for _, o := range rec.Orders {
		out[o.ID] = orderEvents{}
	}
	seen := map[string]int{}
	n, err := ScanTopics(ctx, c.Kafka, func(ev Event) {
		evs, ours := out[ev.Key]
		if !ours || ev.ID == "" {
			return
		}
		r.KafkaRecords++
		seen[ev.ID]++
		if seen[ev.ID] == 2 {
			r.KafkaDuplicates++
		}
		if evs[ev.Type] == nil {
			evs[ev.Type] = map[string]int64{}
		}
		if off, seen := evs[ev.Type][ev.ID]; !seen || ev.Offset < off {
			evs[ev.Type][ev.ID] = ev.Offset
		}
	})
	if err != nil {
		return nil, fmt.Errorf("scan topics: %w", err)
	}
	c.logf("scanned %d records on %v", n, SagaTopics)
	return out, nil
}

// checkTerminal: invariant 1.
func (c *Checker) checkTerminal(o load.Order, v1, v2 OrderView, evs orderEvents, r *Result, add addFunc) {
	r.Checked[1]++
	switch {
	case !Terminal(v2.Status):
		r.Lost++
		add(1, o.ID, "status %s is not terminal", v2.Status)
	case v1 != v2:
		add(1, o.ID, "terminal status changed: %s/%s → %s/%s", v1.Status, v1.Reason, v2.Status, v2.Reason)
	case evs.has("OrderCompleted") && evs.has("OrderCanceled"):
		r.DoubledEffects++
		add(1, o.ID, "both OrderCompleted and OrderCanceled were emitted (status %s)", v2.Status)
	case v2.Status == "COMPLETED" && evs.has("OrderCanceled"), v2.Status == "CANCELED" && evs.has("OrderCompleted"):
		add(1, o.ID, "status %s contradicts the terminal event on order-events", v2.Status)
	}
	if v2.Amount != o.Amount {
		add(1, o.ID, "amount %d, placed %d", v2.Amount, o.Amount)
	}
}

// checkCharges: invariant 3, and invariant 9's money half: a COMPLETED order has exactly one
// APPROVED (hence unvoided) charge of exactly its amount and currency, not merely a charge under
// its key (the gateway's ledger, read as the merchant).
func (c *Checker) checkCharges(o load.Order, v OrderView, cs []Charge, r *Result, add addFunc) {
	r.Checked[3]++
	var approved []Charge
	for _, ch := range cs {
		if ch.Status == "APPROVED" {
			approved = append(approved, ch)
		}
	}
	if len(cs) > 1 {
		r.DoubledEffects++
		add(3, o.ID, "%d charges in the ledger: %+v", len(cs), cs)
	}
	switch v.Status {
	case "CANCELED":
		if len(approved) > 0 {
			add(3, o.ID, "CANCELED (%s) but a charge is still APPROVED: %+v", v.Reason, cs)
		}
	case "COMPLETED":
		r.Checked[9]++
		if len(approved) != 1 || approved[0].Amount != v.Amount {
			add(3, o.ID, "COMPLETED (amount %d) needs exactly one APPROVED charge of that amount: %+v", v.Amount, cs)
		}
		if !paidExactly(v, approved) {
			add(9, o.ID, "COMPLETED (%d %s) needs exactly one APPROVED, unvoided charge of exactly that amount and currency: %+v",
				v.Amount, v.Currency, cs)
		}
	}
}

// paidExactly reports whether approved, the APPROVED charges of a completed order v, are one
// charge of exactly v's amount and currency.
func paidExactly(v OrderView, approved []Charge) bool {
	return len(approved) == 1 && approved[0].Amount == v.Amount && approved[0].Currency == v.Currency
}

// expected lists the events an order in a terminal state must have put on Kafka.
func expected(v OrderView, evs orderEvents) []string {
	switch {
	case v.Status == "COMPLETED":
		return []string{"OrderCreated", "StockReserved", "PaymentAuthorized", "OrderCompleted", "StockCommitted"}
	case v.Reason == "OUT_OF_STOCK":
		return []string{"OrderCreated", "StockReservationFailed", "OrderCanceled"}
	case v.Reason == "PAYMENT_FAILED":
		return []string{"OrderCreated", "StockReserved", "PaymentFailed", "OrderCanceled", "StockReleased"}
	case evs.has("StockReserved"): // TIMEOUT after a reservation
		return []string{"OrderCreated", "StockReserved", "OrderCanceled", "StockReleased"}
	default:
		return []string{"OrderCreated", "OrderCanceled"}
	}
}

// checkEvents: invariant 4.
func (c *Checker) checkEvents(o load.Order, v OrderView, evs orderEvents, r *Result, add addFunc) {
	r.Checked[4]++
	if !Terminal(v.Status) {
		return
	}
	for _, t := range expected(v, evs) {
		if !evs.has(t) {
			r.Lost++
			add(4, o.ID, "%s (%s/%s) but no %s on Kafka", v.Status, v.Status, v.Reason, t)
		}
	}
	for t, ids := range evs {
		if len(ids) > 1 {
			r.DoubledEffects++
			add(4, o.ID, "%d distinct %s events: the step took effect more than once", len(ids), t)
		}
	}
}

// checkStock: invariant 2, plus sold = the quantity of the completed orders.
func (c *Checker) checkStock(rec *load.Record, s *Snapshot, r *Result, add addFunc) {
	sold := map[string]int64{}
	for _, o := range rec.Orders {
		if s.Orders[o.ID].Status == "COMPLETED" {
			sold[o.SKU] += int64(o.Qty)
		}
	}
	for sku, initial := range rec.Stock {
		r.Checked[2]++
		st := s.Stock[sku]
		if got := st.Available + st.Reserved + st.Sold; got != initial {
			add(2, sku, "available %d + reserved %d + sold %d = %d, initial %d", st.Available, st.Reserved, st.Sold, got, initial)
		}
		if st.Reserved != 0 {
			add(2, sku, "%d units still reserved though every order is terminal", st.Reserved)
		}
		if st.Sold != sold[sku] {
			if st.Sold > sold[sku] {
				r.DoubledEffects++
			}
			add(2, sku, "sold %d, completed orders hold %d", st.Sold, sold[sku])
		}
	}
}

// checkDeadLetters: invariant 4 from the consumers' side. Every event of a recorded order is a
// real saga event, never poison: one in a service's dead letters is a step that never took
// effect (the compensations that follow may hide it from the other invariants).
func (c *Checker) checkDeadLetters(ctx context.Context, rec *load.Record, r *Result, add addFunc) error {
	ours := make(map[string]bool, len(rec.Orders))
	for _, o := range rec.Orders {
		ours[o.ID] = true
	}
	for _, name := range Services {
		svc := struct{ name, url string }{name, c.Endpoints.ServiceURL(name)}
		dls, err := c.Endpoints.DeadLetters(ctx, svc.url)
		if err != nil {
			return fmt.Errorf("dead letters of %s: %w", svc.name, err)
		}
		if len(dls) == MaxDeadLetters {
			c.logf("dead letters of %s: only the newest %d were read", svc.name, MaxDeadLetters)
		}
		for _, d := range dls {
			if ours[d.Key] {
				r.DeadLettered++
				add(4, d.Key, "%s %s dead-lettered by %s: %s", d.EventType, d.EventID, svc.name, d.Error)
			}
		}
	}
	return nil
}

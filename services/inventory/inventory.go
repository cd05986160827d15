// Package inventory is the inventory service's domain: stock per SKU, the reservation an order
// holds, and the rules that move stock between available, reserved and sold.
//
// The functions here decide and never persist: each returns the new state to write and the
// events to emit, as values (messaging.Event). The saga steps write both in one transaction.
//
// Invariant 2 of the project (see docs/architecture.md, "Decisions inside the services"): per
// SKU, initial stock = available + reserved + sold at every quiescent point, and an order in a
// terminal state holds no reservation.
package inventory

import (
	"slices"
	"strings"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
)

// AggregateType is the outbox aggregate type of inventory events (topic inventory-events).
const AggregateType = "inventory"

// Event types this service emits, all at EventVersion.
const (
	EventStockReserved          = "StockReserved"
	EventStockReservationFailed = "StockReservationFailed"
	EventStockReleased          = "StockReleased"
	EventStockCommitted         = "StockCommitted"
	EventStockDepleted          = "StockDepleted"
	EventStockReplenished       = "StockReplenished"
)

// EventVersion is the version of every event this service emits.
const EventVersion = 1

// ReasonOutOfStock is the reason of a failed reservation.
const ReasonOutOfStock = "OUT_OF_STOCK"

// maxSKULen bounds a SKU so that a path segment cannot grow a row without limit.
const maxSKULen = 64

// MaxAvailable is the most units of one SKU an operator may set as available: with the order
// bounds (10,000 per line) no sum of stock counts comes near the int64 limit.
const MaxAvailable = 1_000_000_000

// Stock is what the warehouse holds of one SKU. All counts are ≥ 0.
type Stock struct {
	SKU       string `json:"sku"`
	Available int64  `json:"available"`
	Reserved  int64  `json:"reserved"`
	Sold      int64  `json:"sold"`
}

// SetAvailable returns s with its available count set to n; reserved and sold stay. An operator
// uses it to restock or correct a count, so it redefines the SKU's initial stock for invariant 2:
// from now on initial = n + reserved + sold. Reservations in flight are untouched and still
// release or commit against reserved.
func (s Stock) SetAvailable(n int64) (Stock, error) {
	if err := ValidateSKU(s.SKU); err != nil {
		return Stock{}, err
	}
	if n < 0 || n > MaxAvailable {
		return Stock{}, fault.Errorf(fault.Invalid, "available must be from 0 to %d, not %d", MaxAvailable, n)
	}
	s.Available = n
	return s, nil
}

// ValidateSKU accepts 1 to 64 characters of letters, digits, '-', '_' and '.'.
func ValidateSKU(sku string) error {
	if sku == "" || len(sku) > maxSKULen {
		return fault.Errorf(fault.Invalid, "sku must have 1 to %d characters", maxSKULen)
	}
	for _, c := range sku {
		if !isSKUChar(c) {
			return fault.Errorf(fault.Invalid, "sku %q may hold only letters, digits, '-', '_' and '.'", sku)
		}
	}
	return nil
}

func isSKUChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// Status is the state of a reservation. RESERVED is the only non-terminal one.
type Status string

// Reservation statuses.
const (
	StatusReserved  Status = "RESERVED"  // stock is held for the order
	StatusReleased  Status = "RELEASED"  // the order was canceled; the stock went back to available
	StatusCommitted Status = "COMMITTED" // the order completed; the stock was sold
	StatusFailed    Status = "FAILED"    // some item was short; nothing was held
)

// Item is one order line. UnitPrice is not used for stock; it is kept so that the events that
// echo the items match their schema.
type Item struct {
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	UnitPrice int64  `json:"unitPrice"`
}

// Reservation is what inventory did for one order. Items are the order's lines as received.
type Reservation struct {
	OrderID string
	Status  Status
	Items   []Item
	Reason  string // why it failed (OUT_OF_STOCK) or was released (the cancel reason)
}

// Order is the part of an OrderCreated event inventory acts on. Amount, Currency and
// PaymentToken are carried forward to StockReserved for the payment step.
type Order struct {
	ID           string
	Items        []Item
	Amount       int64
	Currency     string
	PaymentToken string
}

// Outcome names what a decision did; it labels logs and metrics.
type Outcome string

// Outcomes of a decision.
const (
	OutcomeReserved  Outcome = "reserved"
	OutcomeFailed    Outcome = "failed"
	OutcomeReleased  Outcome = "released"
	OutcomeCommitted Outcome = "committed"
	OutcomeIgnored   Outcome = "ignored" // a duplicate or late event: nothing changes
)

// StockReservedData is the data of StockReserved.
type StockReservedData struct {
	OrderID      string `json:"orderId"`
	Items        []Item `json:"items"`
	Amount       int64  `json:"amount"`
	Currency     string `json:"currency"`
	PaymentToken string `json:"paymentToken"`
}

// StockReservationFailedData is the data of StockReservationFailed.
type StockReservationFailedData struct {
	OrderID string   `json:"orderId"`
	Reason  string   `json:"reason"`
	SKUs    []string `json:"skus"`
}

// StockReleasedData is the data of StockReleased.
type StockReleasedData struct {
	OrderID string `json:"orderId"`
	Items   []Item `json:"items"`
}

// StockCommittedData is the data of StockCommitted.
type StockCommittedData struct {
	OrderID string `json:"orderId"`
	Items   []Item `json:"items"`
}

// StockDepletedData is the data of StockDepleted: the SKU's available count has just gone to 0.
type StockDepletedData struct {
	SKU string `json:"sku"`
}

// StockReplenishedData is the data of StockReplenished: the SKU's available count has just gone
// from 0 to Available.
type StockReplenishedData struct {
	SKU       string `json:"sku"`
	Available int64  `json:"available"`
}

// StockEvent is an event about one SKU (StockDepleted or StockReplenished): its aggregate id,
// and so its Kafka key, is the SKU, so that the transitions of one SKU stay in order on one
// partition whatever orders caused them.
type StockEvent struct {
	SKU   string
	Event messaging.Event
}

// Transitions returns the StockDepleted and StockReplenished events of the rows in after (the
// rows a decision moved or set) whose available count crossed 0 since before: to 0 from above
// (StockDepleted), above 0 from 0 (StockReplenished). A SKU missing from before had no row: it
// counts as not sold out, so a new row at 0 is depleted and a new row above 0 emits nothing.
// A row that stays at 0, or stays above it, emits nothing: one event per transition.
func Transitions(before map[string]Stock, after []Stock) []StockEvent {
	var out []StockEvent
	for _, s := range after {
		old, had := before[s.SKU]
		wasOut := had && old.Available == 0
		switch isOut := s.Available == 0; {
		case isOut && !wasOut:
			out = append(out, StockEvent{SKU: s.SKU, Event: messaging.Event{Type: EventStockDepleted, Data: StockDepletedData{SKU: s.SKU}}})
		case !isOut && wasOut:
			out = append(out, StockEvent{SKU: s.SKU, Event: messaging.Event{Type: EventStockReplenished, Data: StockReplenishedData{SKU: s.SKU, Available: s.Available}}})
		}
	}
	return out
}

// Restock decides an operator's setting of sku's available count to n (PUT /stock/{sku}):
// current is the locked row, had whether there was one. It returns the row to store and the
// transition it makes, if any (see Transitions).
func Restock(sku string, current Stock, had bool, n int64) (Stock, []StockEvent, error) {
	if !had {
		current = Stock{SKU: sku}
	}
	next, err := current.SetAvailable(n)
	if err != nil {
		return Stock{}, nil, err
	}
	before := map[string]Stock{}
	if had {
		before[sku] = current
	}
	return next, Transitions(before, []Stock{next}), nil
}

// Change is a decision: the reservation as it must be stored, the stock rows that moved (in SKU
// order), the events to emit about the order and those about single SKUs (StockEvents, keyed by
// SKU). For OutcomeIgnored, Stock, Events and StockEvents are empty (see CancelUnseen for the one
// ignored decision that still stores a reservation).
type Change struct {
	Outcome     Outcome
	Reservation Reservation
	Stock       []Stock
	Events      []messaging.Event
	StockEvents []StockEvent
}

// Quantity is the total of one SKU across an order's lines.
type Quantity struct {
	SKU string
	Qty int64
}

// Quantities sums items per SKU and returns the totals in SKU order: the order in which stock
// rows are locked, so that concurrent transactions never wait on each other in a cycle.
func Quantities(items []Item) []Quantity {
	var out []Quantity
	for _, it := range items {
		i, found := slices.BinarySearchFunc(out, it.SKU, func(q Quantity, sku string) int {
			return strings.Compare(q.SKU, sku)
		})
		if found {
			out[i].Qty += it.Qty
			continue
		}
		out = slices.Insert(out, i, Quantity{SKU: it.SKU, Qty: it.Qty})
	}
	return out
}

// SKUs returns the distinct SKUs of items in SKU order.
func SKUs(items []Item) []string {
	qs := Quantities(items)
	skus := make([]string, len(qs))
	for i, q := range qs {
		skus[i] = q.SKU
	}
	return skus
}

// Validate checks that o can be decided on: an id and at least one line, each with a SKU and a
// quantity ≥ 1. A SKU this service could never stock (see ValidateSKU) is not an error: it is
// unknown, so the order fails as out of stock and the saga moves on.
func (o Order) Validate() error {
	if o.ID == "" {
		return fault.Errorf(fault.Invalid, "order id is required")
	}
	if len(o.Items) == 0 {
		return fault.Errorf(fault.Invalid, "order %s has no items", o.ID)
	}
	for _, it := range o.Items {
		if it.SKU == "" {
			return fault.Errorf(fault.Invalid, "order %s has an item without sku", o.ID)
		}
		if it.Qty < 1 {
			return fault.Errorf(fault.Invalid, "order %s: qty of %s must be ≥ 1, not %d", o.ID, it.SKU, it.Qty)
		}
	}
	return nil
}

// Reserve decides the reservation of a new order, all or nothing. stock holds the current rows
// of the order's SKUs; a SKU missing from it is unknown and counts as out of stock. If every SKU
// has enough available, the quantities move from available to reserved and StockReserved is
// emitted; otherwise nothing moves, the reservation is FAILED and StockReservationFailed names
// the short SKUs.
func Reserve(o Order, stock map[string]Stock) (Change, error) {
	if err := o.Validate(); err != nil {
		return Change{}, err
	}
	qs := Quantities(o.Items)
	moved := make([]Stock, 0, len(qs))
	var short []string
	for _, q := range qs {
		s, ok := stock[q.SKU]
		if !ok || s.Available < q.Qty {
			short = append(short, q.SKU)
			continue
		}
		s.Available -= q.Qty
		s.Reserved += q.Qty
		moved = append(moved, s)
	}
	r := Reservation{OrderID: o.ID, Items: o.Items}
	if len(short) > 0 {
		r.Status, r.Reason = StatusFailed, ReasonOutOfStock
		return Change{
			Outcome:     OutcomeFailed,
			Reservation: r,
			Events: []messaging.Event{{Type: EventStockReservationFailed, Data: StockReservationFailedData{
				OrderID: o.ID, Reason: ReasonOutOfStock, SKUs: short,
			}}},
		}, nil
	}
	r.Status = StatusReserved
	return Change{
		Outcome:     OutcomeReserved,
		Reservation: r,
		Stock:       moved,
		Events: []messaging.Event{{Type: EventStockReserved, Data: StockReservedData{
			OrderID: o.ID, Items: o.Items, Amount: o.Amount, Currency: o.Currency, PaymentToken: o.PaymentToken,
		}}},
		StockEvents: Transitions(stock, moved),
	}, nil
}

// Release gives a held reservation back (the order was canceled): reserved → available, the
// reservation becomes RELEASED with reason, and StockReleased is emitted. A reservation that is
// not RESERVED (failed, already released or committed) is left alone: OutcomeIgnored.
func Release(r Reservation, stock map[string]Stock, reason string) (Change, error) {
	return settle(r, stock, func(s *Stock, qty int64) { s.Available += qty }, func(r *Reservation) (Outcome, messaging.Event) {
		r.Status, r.Reason = StatusReleased, reason
		return OutcomeReleased, messaging.Event{Type: EventStockReleased, Data: StockReleasedData{OrderID: r.OrderID, Items: r.Items}}
	})
}

// CancelUnseen records an order canceled before inventory saw its OrderCreated (its creation
// was dead-lettered, or arrives late from a replay). The reservation is RELEASED and holds
// nothing; its existence makes the late OrderCreated a no-op, so stock is never held for a
// canceled order. No stock moves and nothing is emitted: nothing was released.
func CancelUnseen(orderID string, items []Item, reason string) Change {
	return Change{
		Outcome:     OutcomeIgnored,
		Reservation: Reservation{OrderID: orderID, Status: StatusReleased, Items: items, Reason: reason},
	}
}

// Commit turns a held reservation into a sale (the order completed): reserved → sold, the
// reservation becomes COMMITTED and StockCommitted is emitted. A reservation that is not
// RESERVED is left alone: OutcomeIgnored.
func Commit(r Reservation, stock map[string]Stock) (Change, error) {
	return settle(r, stock, func(s *Stock, qty int64) { s.Sold += qty }, func(r *Reservation) (Outcome, messaging.Event) {
		r.Status = StatusCommitted
		return OutcomeCommitted, messaging.Event{Type: EventStockCommitted, Data: StockCommittedData{OrderID: r.OrderID, Items: r.Items}}
	})
}

// settle ends a held reservation: its quantities leave reserved for where to puts them, end
// marks the reservation and names the outcome and the event. A reservation that is not RESERVED
// is left alone: OutcomeIgnored.
func settle(r Reservation, stock map[string]Stock, to func(s *Stock, qty int64), end func(r *Reservation) (Outcome, messaging.Event)) (Change, error) {
	if r.Status != StatusReserved {
		return Change{Outcome: OutcomeIgnored, Reservation: r}, nil
	}
	moved, err := unreserve(r, stock, to)
	if err != nil {
		return Change{}, err
	}
	outcome, event := end(&r)
	return Change{
		Outcome:     outcome,
		Reservation: r,
		Stock:       moved,
		Events:      []messaging.Event{event},
		StockEvents: Transitions(stock, moved),
	}, nil
}

// unreserve takes r's quantities out of reserved and hands each to to. A held reservation whose
// stock is missing or too small means the invariant is already broken: that is an internal
// error, not something to paper over.
func unreserve(r Reservation, stock map[string]Stock, to func(s *Stock, qty int64)) ([]Stock, error) {
	qs := Quantities(r.Items)
	moved := make([]Stock, 0, len(qs))
	for _, q := range qs {
		s, ok := stock[q.SKU]
		if !ok || s.Reserved < q.Qty {
			return nil, fault.Errorf(fault.Internal, "order %s holds %d of %s but only %d is reserved", r.OrderID, q.Qty, q.SKU, s.Reserved)
		}
		s.Reserved -= q.Qty
		to(&s, q.Qty)
		moved = append(moved, s)
	}
	return moved, nil
}

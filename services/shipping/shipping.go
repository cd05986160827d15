// Package shipping is the shipping service's domain: the one delivery of a completed order and
// the steps that move it, PREPARING → SHIPPED → DELIVERED.
//
// The functions here decide and never do I/O: Schedule and (*Delivery).Advance return the
// delivery as it must be stored and the event to emit, as a messaging.Event; the saga steps and
// the carrier write both in one transaction.
//
// Invariant 5 of the project (docs/architecture.md, "Shipping"): every COMPLETED order has
// exactly one delivery, a CANCELED order none, and a delivery only moves forward. How it holds:
//
//   - One delivery per order. The delivery's key is the order id (deliveries.order_id is the
//     primary key): a redelivered OrderCompleted is skipped by the inbox (its event id), and the
//     same OrderCompleted under a new event id (a producer that crashed after its commit and
//     emitted again, a replayed dead letter) finds the order's delivery and schedules nothing:
//     no second delivery, no second DeliveryScheduled.
//   - None for a canceled order. Only OrderCompleted creates a delivery, and the order service
//     emits OrderCompleted or OrderCanceled for an order, never both (each only in the
//     transaction that moves it out of PENDING, and a terminal order never moves again). So
//     OrderCanceled needs no action here, early or late: a canceled order has no delivery to
//     stop, and no tombstone is needed to keep a later OrderCompleted from scheduling one, for
//     none can come. (Inventory stores one, CancelUnseen, because an OrderCreated can reach it
//     after the cancel, dead-lettered and replayed; an OrderCompleted of a canceled order does
//     not exist to be replayed.) OrderCreated and OrderCanceled are therefore known and ignored.
//     Should invariant 1 ever break upstream, the order service is where it shows: it refuses
//     delivery events for an order that is not COMPLETED. A COMPLETED order whose OrderCompleted
//     was dead-lettered here has no delivery until an operator replays it (every dead letter
//     alerts).
//   - Forward only. Advance moves a delivery exactly one step and refuses to move a DELIVERED
//     one (a fault.Conflict: 409 for an operator). The carrier takes due deliveries FOR UPDATE
//     SKIP LOCKED, and Postgres re-checks that a locked row is still due, so concurrent carriers
//     and an operator never repeat a step; the write requires the status the move was decided
//     on; and a trigger in the database refuses any status change but one step forward.
//
// Every event of a delivery is in the trace of the OrderCompleted that created it (TraceID),
// so the whole delivery shows in the order's trace.
package shipping

import (
	"time"

	"github.com/google/uuid"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
)

// AggregateType is the outbox aggregate type of shipping events (topic shipping-events).
const AggregateType = "shipping"

// Event types this service emits, all at EventVersion.
const (
	EventDeliveryScheduled = "DeliveryScheduled"
	EventDeliveryShipped   = "DeliveryShipped"
	EventDeliveryDelivered = "DeliveryDelivered"
)

// EventVersion is the version of every event this service emits.
const EventVersion = 1

// MaxItems is the most lines a delivery carries: an order's bound, and its events' schemas'.
const MaxItems = 50

// Status is how far a delivery has come. DELIVERED is the last step.
type Status string

// Delivery statuses, in the only order a delivery goes through them.
const (
	StatusPreparing Status = "PREPARING" // scheduled: the order completed, the parcel is being packed
	StatusShipped   Status = "SHIPPED"   // the carrier has it
	StatusDelivered Status = "DELIVERED" // the customer has it; nothing moves it again
)

// steps maps each status but the last to the next one and the event that says so.
var steps = map[Status]struct {
	next  Status
	event string
}{
	StatusPreparing: {next: StatusShipped, event: EventDeliveryShipped},
	StatusShipped:   {next: StatusDelivered, event: EventDeliveryDelivered},
}

// Item is one line of the order, as OrderCompleted carried it.
type Item struct {
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	UnitPrice int64  `json:"unitPrice"`
}

// Delivery is the one delivery of a completed order. Its JSON is the answer of
// GET /deliveries/{orderId}.
type Delivery struct {
	OrderID   string    `json:"orderId"`
	ID        string    `json:"deliveryId"`
	Status    Status    `json:"status"`
	Items     []Item    `json:"items"`
	UpdatedAt time.Time `json:"updatedAt"` // when it reached its status; the carrier's clock runs from here
	CreatedAt time.Time `json:"-"`
	// TraceID is the trace of the OrderCompleted that created the delivery: every event of the
	// delivery is emitted in it.
	TraceID string `json:"-"`
	// Traceparent is the span its later events hang below (Parent): the OrderCompleted step's.
	Traceparent string `json:"-"`
}

// DeliveryScheduledData is the data of DeliveryScheduled.
type DeliveryScheduledData struct {
	OrderID    string `json:"orderId"`
	DeliveryID string `json:"deliveryId"`
	Items      []Item `json:"items"`
}

// StepData is the data of DeliveryShipped and DeliveryDelivered.
type StepData struct {
	OrderID    string `json:"orderId"`
	DeliveryID string `json:"deliveryId"`
}

// ValidateOrderID accepts an order id as the order service makes them: a UUID in its 36
// character form.
func ValidateOrderID(id string) error {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return fault.Errorf(fault.Invalid, "order id %.40q is not a UUID", id)
	}
	return nil
}

// Schedule decides the delivery of a completed order: id is the new delivery's id, items the
// order's lines, traceID the trace of the OrderCompleted (32 hex digits), now the time. The
// delivery starts PREPARING and DeliveryScheduled announces it. Whether the order has a delivery
// already is the caller's to check (the repository's unique order id).
func Schedule(orderID, id string, items []Item, traceID string, now time.Time) (Delivery, messaging.Event, error) {
	if err := check(orderID, id, items, traceID); err != nil {
		return Delivery{}, messaging.Event{}, err
	}
	at := stamp(now)
	d := Delivery{OrderID: orderID, ID: id, Status: StatusPreparing, Items: items, UpdatedAt: at, CreatedAt: at, TraceID: traceID}
	data := DeliveryScheduledData{OrderID: orderID, DeliveryID: id, Items: items}
	return d, messaging.Event{Type: EventDeliveryScheduled, Data: data}, nil
}

// check returns a fault.Invalid error that says why a delivery cannot be scheduled, or nil.
func check(orderID, id string, items []Item, traceID string) error {
	if err := ValidateOrderID(orderID); err != nil {
		return err
	}
	_, idErr := uuid.Parse(id)
	_, traceErr := messaging.NewTraceparentIn(traceID)
	switch {
	case idErr != nil:
		return fault.Errorf(fault.Invalid, "delivery id %.40q is not a UUID", id)
	case len(items) == 0 || len(items) > MaxItems:
		return fault.Errorf(fault.Invalid, "order %s: a delivery has 1 to %d lines, not %d", orderID, MaxItems, len(items))
	case traceErr != nil:
		return fault.Errorf(fault.Invalid, "order %s: %v", orderID, traceErr)
	}
	return nil
}

// Advance moves d one step forward (PREPARING → SHIPPED → DELIVERED) at now and returns the
// event that says so. A DELIVERED delivery does not move: a fault.Conflict (reason
// already_delivered), and d is left as it was.
func (d *Delivery) Advance(now time.Time) (messaging.Event, error) {
	s, ok := steps[d.Status]
	if !ok {
		if d.Status == StatusDelivered {
			return messaging.Event{}, fault.Reasoned(fault.Conflict, "already_delivered",
				"the delivery of order %s is DELIVERED: it moves no more", d.OrderID)
		}
		return messaging.Event{}, fault.Errorf(fault.Internal, "the delivery of order %s has an unknown status %q", d.OrderID, d.Status)
	}
	d.Status, d.UpdatedAt = s.next, stamp(now)
	return messaging.Event{Type: s.event, Data: StepData{OrderID: d.OrderID, DeliveryID: d.ID}}, nil
}

// Trace returns the traceparent of a next event of d: a new span in the trace of the
// OrderCompleted that created it (a new trace if that id were unusable, which Schedule rules out).
func (d Delivery) Trace() messaging.Traceparent {
	tp, err := messaging.NewTraceparentIn(d.TraceID)
	if err != nil {
		return messaging.NewTraceparent()
	}
	return tp
}

// Parent is the span the delivery's later events hang below: the span of the OrderCompleted step
// that scheduled it (Traceparent) or, for a delivery stored without one, a span in its trace.
func (d Delivery) Parent() messaging.Traceparent {
	if tp, err := messaging.ParseTraceparent(d.Traceparent); err == nil && tp.TraceID() == d.TraceID {
		return tp
	}
	return d.Trace()
}

// stamp is now as the database keeps it: UTC, to the microsecond.
func stamp(now time.Time) time.Time { return now.UTC().Truncate(time.Microsecond) }

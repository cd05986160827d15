package order

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"

	"outboxsaga.dev/messaging/fault"
)

// Recorded is one entry of an order's stream, as the fold reads it: one of the order's own events
// from the event store (Seq ≥ 1, in seq order), or a fact the order learned from another service
// and recorded in its timeline (Seq 0: the delivery events, docs/architecture.md "The order is
// event-sourced").
type Recorded struct {
	Seq          int
	EventID      string
	EventType    string
	EventVersion int
	// OccurredAt is the event's occurredAt (own events) or when the order recorded the fact.
	OccurredAt time.Time
	TraceID    string
	Data       json.RawMessage
	Meta       Meta
}

// Meta is what the order service stores beside an event of its own that the published event
// does not carry: how the order was placed (deadline, idempotency key and request hash, for
// OrderCreated). Nothing outside the order service reads it.
type Meta struct {
	DeadlineAt     time.Time `json:"deadlineAt,omitzero"`
	IdempotencyKey string    `json:"idempotencyKey,omitempty"`
	RequestHash    string    `json:"requestHash,omitempty"`
}

// Upcaster brings an event's data to the latest version of its type; messaging/upcast's
// Upcaster is the project's one. Nil reads every version as it is.
type Upcaster interface {
	Upcast(eventType string, version int, data json.RawMessage) (json.RawMessage, int, error)
}

// deliveryEvents maps the shipping events the order follows to the delivery status each
// announces.
var deliveryEvents = map[string]Delivery{
	EventDeliveryScheduled: DeliveryPreparing,
	EventDeliveryShipped:   DeliveryShipped,
	EventDeliveryDelivered: DeliveryDelivered,
}

// DeliveryOf returns the delivery status a shipping event announces, and false for any other
// event type.
func DeliveryOf(eventType string) (Delivery, bool) {
	d, ok := deliveryEvents[eventType]
	return d, ok
}

// DeliveryEventTypes are the consumed event types that move an order's state (its delivery):
// the only timeline entries the fold reads.
func DeliveryEventTypes() []string {
	out := make([]string, 0, len(deliveryEvents))
	for t := range deliveryEvents {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Apply folds e into o. It is the one function that turns events into an order's state: live
// writes (the projection), rebuilds and as-of reads all call it. An own event must be the next
// of the order's stream (Seq = o.Version+1); a delivery fact (Seq 0) moves the delivery forward
// as Track does. up upcasts older versions (nil: none).
func (o *Order) Apply(e Recorded, up Upcaster) error {
	if d, ok := DeliveryOf(e.EventType); ok && e.Seq == 0 {
		if o.Version == 0 {
			return fmt.Errorf("apply %s %s: the order has no events", e.EventType, e.EventID)
		}
		if _, err := o.Track(d, e.OccurredAt); err != nil {
			return fmt.Errorf("apply %s %s: %w", e.EventType, e.EventID, err)
		}
		return nil
	}
	if e.Seq != o.Version+1 {
		return fmt.Errorf("apply %s %s: seq %d does not follow %d", e.EventType, e.EventID, e.Seq, o.Version)
	}
	data, version := e.Data, e.EventVersion
	if up != nil {
		var err error
		if data, version, err = up.Upcast(e.EventType, e.EventVersion, e.Data); err != nil {
			return fmt.Errorf("apply %s %s: %w", e.EventType, e.EventID, err)
		}
	}
	switch e.EventType {
	case EventOrderCreated:
		var d CreatedData
		if err := json.Unmarshal(data, &d); err != nil {
			return fmt.Errorf("apply %s %s v%d: %w", e.EventType, e.EventID, version, err)
		}
		id, err := uuid.Parse(d.OrderID)
		if err != nil {
			return fmt.Errorf("apply %s %s: order id: %w", e.EventType, e.EventID, err)
		}
		*o = Order{
			ID: id, CustomerID: d.CustomerID, Status: StatusPending, Items: d.Items, Amount: d.Amount, Currency: d.Currency,
			PaymentToken: d.PaymentToken, Channel: d.Channel, TraceID: e.TraceID, CreatedAt: e.OccurredAt, UpdatedAt: e.OccurredAt,
			DeadlineAt: e.Meta.DeadlineAt, IdempotencyKey: e.Meta.IdempotencyKey, RequestHash: e.Meta.RequestHash,
		}
	case EventOrderCompleted:
		if o.Status != StatusPending {
			return fmt.Errorf("apply %s %s: order %s is %s", e.EventType, e.EventID, o.ID, o.Status)
		}
		o.Status = StatusCompleted
	case EventOrderCanceled:
		var d CanceledData
		if err := json.Unmarshal(data, &d); err != nil {
			return fmt.Errorf("apply %s %s v%d: %w", e.EventType, e.EventID, version, err)
		}
		if o.Status != StatusPending {
			return fmt.Errorf("apply %s %s: order %s is %s", e.EventType, e.EventID, o.ID, o.Status)
		}
		o.Status, o.Reason = StatusCanceled, d.Reason
	default:
		return fmt.Errorf("apply %s %s: not an event of the order", e.EventType, e.EventID)
	}
	o.Version, o.UpdatedAt = e.Seq, e.OccurredAt
	if o.Status.Terminal() {
		// A finished order keeps no card secret (issue 19, point 6).
		o.PaymentToken = ""
	}
	return nil
}

// Fold returns the order that events make: the order's own events in seq order, then the
// delivery facts it recorded (Merge). A fact about an order that is not COMPLETED is skipped: the
// live path records none (the step fails), so only an as-of read whose instant falls between two
// clocks' readings (a fact recorded on one instance, the completion on another) meets one. The
// error is a fault.NotFound when events hold no OrderCreated.
func Fold(events []Recorded, up Upcaster) (Order, error) {
	var o Order
	for _, e := range events {
		if e.Seq == 0 && o.Status != StatusCompleted {
			continue
		}
		if err := o.Apply(e, up); err != nil {
			return Order{}, err
		}
	}
	if o.Version == 0 {
		return Order{}, fault.Errorf(fault.NotFound, "order not found")
	}
	return o, nil
}

// Merge is an order's stream for Fold: its own events (by seq), then its delivery facts (in the
// order they were recorded). Facts only ever follow the completion, the last own event.
func Merge(own, facts []Recorded) []Recorded {
	out := make([]Recorded, 0, len(own)+len(facts))
	return append(append(out, own...), facts...)
}

// Types of the events the order service consumes (inventory-events, payment-events,
// shipping-events).
const (
	EventStockReserved          = "StockReserved"
	EventStockReservationFailed = "StockReservationFailed"
	EventStockReleased          = "StockReleased"
	EventStockCommitted         = "StockCommitted"
	EventStockDepleted          = "StockDepleted"
	EventStockReplenished       = "StockReplenished"
	EventPaymentAuthorized      = "PaymentAuthorized"
	EventPaymentFailed          = "PaymentFailed"
	EventPaymentVoided          = "PaymentVoided"
	EventDeliveryScheduled      = "DeliveryScheduled"
	EventDeliveryShipped        = "DeliveryShipped"
	EventDeliveryDelivered      = "DeliveryDelivered"
)

// Package console is the operator's console of the saga pipeline: what it shows (sagas, one
// saga's timeline, dead letters, the pipeline's health) as plain values, and the judgement of
// the pipeline's health in words. It reads only the pipeline's public surfaces (the services'
// HTTP APIs, Kafka Connect's REST API, Kafka as the read-only viewer, PostgreSQL's
// replication-slot view) through the packages named after them, and writes only through the
// services' operator endpoints and Connect's REST API.
package console

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Saga is one order as the sagas list shows it (the order service's GET /orders).
type Saga struct {
	OrderID    string    `json:"orderId"`
	Status     string    `json:"status"`
	Reason     string    `json:"reason"`
	CustomerID string    `json:"customerId"`
	Amount     int64     `json:"amount"`
	Currency   string    `json:"currency"`
	Delivery   *string   `json:"delivery"`
	Waiting    string    `json:"waiting"`
	TraceID    string    `json:"traceId"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
	DeadlineAt time.Time `json:"deadlineAt"`
}

// Terminal reports whether the saga ended (COMPLETED or CANCELED).
func (s Saga) Terminal() bool { return s.Status == "COMPLETED" || s.Status == "CANCELED" }

// SagaFilter selects sagas; its fields are the order service's GET /orders parameters and the
// console's URL parameters alike, so a filtered page is a shareable link.
type SagaFilter struct {
	// ID selects the one saga of this order.
	ID        string
	Status    string
	Reason    string
	OlderThan string
	Waiting   string
	Before    string
	Limit     int
}

// SagaPage is one page of sagas and the cursor of the next ("" on the last).
type SagaPage struct {
	Sagas []Saga `json:"orders"`
	Next  string `json:"next"`
}

// Order is one order in full (GET /orders/{id}).
type Order struct {
	OrderID    string          `json:"orderId"`
	Status     string          `json:"status"`
	Reason     string          `json:"reason"`
	CustomerID string          `json:"customerId"`
	Items      json.RawMessage `json:"items"`
	Amount     int64           `json:"amount"`
	Currency   string          `json:"currency"`
	Delivery   *string         `json:"delivery"`
	CreatedAt  time.Time       `json:"createdAt"`
	UpdatedAt  time.Time       `json:"updatedAt"`
}

// Terminal reports whether the order's saga ended.
func (o Order) Terminal() bool { return o.Status == "COMPLETED" || o.Status == "CANCELED" }

// Event is one entry of an order's timeline (GET /orders/{id}/events).
type Event struct {
	EventID    string          `json:"eventId"`
	EventType  string          `json:"eventType"`
	Source     string          `json:"source"`
	OccurredAt time.Time       `json:"occurredAt"`
	RecordedAt time.Time       `json:"recordedAt"`
	Data       json.RawMessage `json:"data"`
}

// Delivery is an order's delivery (the shipping service's GET /deliveries/{orderId}).
type Delivery struct {
	DeliveryID string    `json:"deliveryId"`
	Status     string    `json:"status"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

// Notification is one message the notification service's webhook accepted about an order.
type Notification struct {
	Kind   string    `json:"kind"`
	Event  string    `json:"event"`
	Text   string    `json:"text"`
	SentAt time.Time `json:"sentAt"`
}

// compensations are the events of the saga's compensation path.
var compensations = map[string]bool{
	"StockReservationFailed": true, "PaymentFailed": true, "StockReleased": true, "OrderCanceled": true,
	"PaymentVoided": true, "PaymentRefunded": true,
}

// Hop is one step of a saga's timeline with its latencies.
type Hop struct {
	Event
	// Service is who emitted the event (the order service, or the topic's owner).
	Service string
	// Step is how long after the previous event this one was committed by its emitter.
	Step time.Duration
	// Delivered is how long the event took from its emitter's commit to the order service's
	// commit of it (commit → Kafka → consumer → its commit); 0 for the order's own events.
	Delivered time.Duration
	// Compensation marks the compensation path.
	Compensation bool
}

// Timeline is a saga's hops, in the order they were recorded, and its total time when it ended.
type Timeline struct {
	Hops []Hop
	// Total is from the first event to the terminal one (0 while the saga runs).
	Total time.Duration
	// Compensated tells whether the saga took the compensation path.
	Compensated bool
}

// NewTimeline computes the hops of a saga's events.
func NewTimeline(events []Event) Timeline {
	var t Timeline
	var terminal time.Time
	for i, e := range events {
		h := Hop{Event: e, Service: serviceOf(e.Source), Compensation: compensations[e.EventType]}
		if i > 0 {
			h.Step = e.OccurredAt.Sub(events[i-1].OccurredAt)
		}
		if e.Source != "order-service" && !e.RecordedAt.IsZero() {
			h.Delivered = e.RecordedAt.Sub(e.OccurredAt)
		}
		if h.Compensation {
			t.Compensated = true
		}
		if e.EventType == "OrderCompleted" || e.EventType == "OrderCanceled" {
			terminal = e.OccurredAt
		}
		t.Hops = append(t.Hops, h)
	}
	if len(events) > 0 && !terminal.IsZero() {
		t.Total = terminal.Sub(events[0].OccurredAt)
	}
	return t
}

// serviceOf names the service an event came from by its timeline source.
func serviceOf(source string) string {
	if source == "order-service" {
		return "order"
	}
	return strings.TrimSuffix(source, "-events")
}

// DeadLetter is one dead letter of one service (GET /dead-letters).
type DeadLetter struct {
	ID          int64      `json:"id"`
	Service     string     `json:"service"`
	EventType   string     `json:"eventType"`
	Topic       string     `json:"topic"`
	Partition   int32      `json:"partition"`
	Offset      int64      `json:"offset"`
	Key         string     `json:"key"`
	Error       string     `json:"error"`
	Attempts    int        `json:"attempts"`
	CreatedAt   time.Time  `json:"createdAt"`
	ReplayedAt  *time.Time `json:"replayedAt"`
	ReplayError string     `json:"replayError"`
}

// Replayed reports whether a replay of the dead letter succeeded (a failed replay is recorded
// too, with its error).
func (d DeadLetter) Replayed() bool { return d.ReplayedAt != nil && d.ReplayError == "" }

// Ref names a dead letter across services: <service>:<id>.
func (d DeadLetter) Ref() string { return fmt.Sprintf("%s:%d", d.Service, d.ID) }

// SortDeadLetters orders dead letters newest first (by service and id on a tie).
func SortDeadLetters(dls []DeadLetter) {
	sort.SliceStable(dls, func(i, j int) bool {
		if !dls[i].CreatedAt.Equal(dls[j].CreatedAt) {
			return dls[i].CreatedAt.After(dls[j].CreatedAt)
		}
		if dls[i].Service != dls[j].Service {
			return dls[i].Service < dls[j].Service
		}
		return dls[i].ID > dls[j].ID
	})
}

// ReplayOutcome is what one replay of a dead letter did.
type ReplayOutcome struct {
	Ref string
	OK  bool
	// Detail is the service's answer in words.
	Detail string
}

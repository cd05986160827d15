// Package notification decides what the notification service tells whom: which consumed event
// calls for which notifications (the customer's, an operator's alert), their texts and their
// idempotency keys. It decides and never does I/O: the saga steps (package saga) send what it
// decides through the webhook client (package webhook) and record it in the service's inbox.
//
//	OrderCompleted               → customer
//	OrderCanceled                → customer; and an alert when its reason is TIMEOUT
//	DeliveryShipped              → customer
//	DeadLettered                 → alert
//
// Texts are short and human. What they quote from an event goes through quote: payment tokens
// redacted (messaging.Redact), control characters dropped, cut short, and Slack's control
// characters (&, <, >) escaped, so an event cannot ping a channel or forge a link.
package notification

import (
	"fmt"
	"strings"
	"time"

	"outboxsaga.dev/messaging"
)

// Service is the service's name: in its settings (NOTIFICATION_*), its logs and its dead letters.
const Service = "notification"

// Kind says whom a notification is for.
type Kind string

// The kinds of notification.
const (
	KindCustomer Kind = "customer"
	KindAlert    Kind = "alert"
)

// The event types that call for a notification, all at version 1.
const (
	EventOrderCompleted  = "OrderCompleted"
	EventOrderCanceled   = "OrderCanceled"
	EventDeliveryShipped = "DeliveryShipped"
	EventDeadLettered    = "DeadLettered"
)

// Notified lists the event types that call for a notification.
var Notified = []string{EventOrderCompleted, EventOrderCanceled, EventDeliveryShipped, EventDeadLettered}

// ReasonTimeout is the reason of an order the saga deadline canceled: it also alerts operators.
const ReasonTimeout = "TIMEOUT"

// Notification is one message to the webhook: its Slack-compatible JSON body.
type Notification struct {
	Text    string `json:"text"`
	Kind    Kind   `json:"kind"`
	Event   string `json:"event"`   // the type of the event it tells of
	OrderID string `json:"orderId"` // the event's aggregate id (for DeadLettered: the poison record's key or its digest)
	EventID string `json:"eventId"`
}

// Key is the notification's Idempotency-Key, <eventId>:<kind>: the same for every POST of it,
// so the webhook can drop repeats, and unique to the event and its reader.
func (n Notification) Key() string { return n.EventID + ":" + string(n.Kind) }

// Sent is a notification the webhook accepted, as the service records it.
type Sent struct {
	Notification
	Key    string    `json:"key"`
	SentAt time.Time `json:"sentAt"`
}

// Event is a consumed event as far as notifications go: its envelope's id, type and aggregate
// id, and the fields of its data that the texts use.
type Event struct {
	ID          string
	Type        string
	AggregateID string
	Data        Data
}

// Data is the union of the data fields the notified events carry (OrderCompleted: orderId;
// OrderCanceled: orderId, reason; DeliveryShipped: orderId, deliveryId; DeadLettered: the dead
// letter's coordinates, the excerpt of its error and its attempts).
type Data struct {
	OrderID    string `json:"orderId"`
	Reason     string `json:"reason"`
	DeliveryID string `json:"deliveryId"`

	Service   string `json:"service"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	EventID   string `json:"eventId"`
	EventType string `json:"eventType"`
	Error     string `json:"error"`
	Attempts  int    `json:"attempts"`
}

// For returns the notifications e calls for, in the order they are to be sent (the customer's
// first); none for an event type that calls for none.
func For(e Event) []Notification {
	order := quote(e.AggregateID, 128)
	note := func(k Kind, format string, args ...any) Notification {
		return Notification{Text: fmt.Sprintf(format, args...), Kind: k, Event: e.Type, OrderID: e.AggregateID, EventID: e.ID}
	}
	switch e.Type {
	case EventOrderCompleted:
		return []Notification{note(KindCustomer, "Your order %s is confirmed. We will let you know when it ships.", order)}
	case EventOrderCanceled:
		out := []Notification{note(KindCustomer, "Your order %s was canceled: %s. You will not be charged for it.", order, why(e.Data.Reason))}
		if e.Data.Reason == ReasonTimeout {
			out = append(out, note(KindAlert, "Order %s was canceled by the saga deadline (TIMEOUT): a step did not finish in time. "+
				"Check the connectors, the consumers and the dead letters.", order))
		}
		return out
	case EventDeliveryShipped:
		return []Notification{note(KindCustomer, "Your order %s is on its way (delivery %s).", order, quote(e.Data.DeliveryID, 64))}
	case EventDeadLettered:
		d := e.Data
		what := "an undecodable record"
		if d.EventType != "" {
			what = quote(d.EventType, 64) + " " + quote(d.EventID, 64)
		}
		return []Notification{note(KindAlert, "Dead letter in %s: %s from %s (partition %d, offset %d, key %s) after %d attempt(s): %s. "+
			"GET /dead-letters on %s lists it; POST /dead-letters/{id}/replay replays it.",
			quote(d.Service, 64), what, quote(d.Topic, 64), d.Partition, d.Offset, order, d.Attempts, quote(d.Error, 300), quote(d.Service, 64))}
	}
	return nil
}

// Loops reports whether e is the DeadLettered of a DeadLettered that this service could not
// handle: its own dead letter from dead-letter-events. Handling it must not dead-letter it again,
// or each failure would make another DeadLettered (saga.Steps.Notify guards it).
func (e Event) Loops() bool {
	return e.Type == EventDeadLettered && e.Data.Service == Service && e.Data.Topic == messaging.TopicDeadLetter
}

// why says a cancel's reason to the customer.
func why(reason string) string {
	switch reason {
	case "OUT_OF_STOCK":
		return "an item is out of stock"
	case "PAYMENT_FAILED":
		return "the payment did not go through"
	case ReasonTimeout:
		return "it could not be completed in time"
	}
	return "reason " + quote(reason, 64)
}

// slack escapes the characters Slack reads as markup (links, mentions such as <!channel>).
var slack = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// quote makes s, taken from an event, safe to show: payment tokens redacted, invalid UTF-8 and
// control characters replaced, at most n characters (cut with "…"), Slack markup escaped.
func quote(s string, n int) string {
	s = strings.ToValidUTF8(string(messaging.Redact([]byte(s))), "\uFFFD")
	runes := []rune(s)
	for i, r := range runes {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) { // C0 and C1 control characters, DEL
			runes[i] = ' '
		}
	}
	if len(runes) > n {
		runes = append(runes[:n], '…')
	}
	return slack.Replace(string(runes))
}

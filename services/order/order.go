// Package order is the order service's domain: an order, the rules a new order must meet, and
// the two ways a pending order ends (completed or canceled), each with the event it emits.
//
// The functions here decide and never persist: they return the new state and the events to
// emit as values (messaging.Event), and the callers (httpapi, saga) write both in one
// transaction.
package order

import (
	"encoding/json"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
)

// AggregateType is the outbox aggregate type of every order event; Debezium routes it to the
// topic order-events.
const AggregateType = "order"

// EventVersion is the version of the events this service emits but OrderCreated.
const EventVersion = 1

// CreatedVersion is the version of the OrderCreated this service emits: v2 adds the channel
// (schemas/OrderCreated.v2.json). The event store keeps the v1 events it has; the fold reads them
// through the upcaster (messaging/upcast).
const CreatedVersion = 2

// Types of the events an order emits.
const (
	EventOrderCreated   = "OrderCreated"
	EventOrderCompleted = "OrderCompleted"
	EventOrderCanceled  = "OrderCanceled"
)

// The input bounds of an order (docs/architecture.md, "Input bounds"); the event schemas under
// schemas/ carry the same ones, so every order that passes New makes events that pass them.
const (
	MaxItems     = 50                // lines per order, each with its own SKU
	MaxQty       = 10_000            // units per line
	MaxUnitPrice = 1_000_000_000_000 // minor units per unit
	MaxTextLen   = 128               // characters of customerId and paymentToken
	MaxSKULen    = 64                // characters of a SKU: letters, digits, '.', '_', '-'
)

// Status is where an order is in its saga.
type Status string

// An order starts PENDING and ends exactly once, COMPLETED or CANCELED.
const (
	StatusPending   Status = "PENDING"
	StatusCompleted Status = "COMPLETED"
	StatusCanceled  Status = "CANCELED"
)

// Delivery is how far an order's delivery has come (shipping-events); none until the shipping
// service schedules it, which it does only for a COMPLETED order.
type Delivery string

// A delivery only moves forward: PREPARING, SHIPPED, DELIVERED.
const (
	DeliveryNone      Delivery = ""
	DeliveryPreparing Delivery = "PREPARING"
	DeliveryShipped   Delivery = "SHIPPED"
	DeliveryDelivered Delivery = "DELIVERED"
)

// deliverySteps orders the delivery statuses.
var deliverySteps = map[Delivery]int{DeliveryNone: 0, DeliveryPreparing: 1, DeliveryShipped: 2, DeliveryDelivered: 3}

// Track records that the order's delivery reached d. It reports whether that moved it: a delivery
// never goes back (a late or replayed event is ignored), and an order that is not COMPLETED has
// none (an event saying otherwise is a fault.Invalid: not about this order).
func (o *Order) Track(d Delivery, now time.Time) (bool, error) {
	if _, known := deliverySteps[d]; !known || d == DeliveryNone {
		return false, fault.Errorf(fault.Invalid, "delivery status %q is unknown", d)
	}
	if o.Status != StatusCompleted {
		return false, fault.Errorf(fault.Invalid, "order %s is %s: it has no delivery", o.ID, o.Status)
	}
	if deliverySteps[d] <= deliverySteps[o.Delivery] {
		return false, nil
	}
	o.Delivery, o.UpdatedAt = d, now
	return true, nil
}

// Terminal reports whether s is an end state, which nothing may change again.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusCanceled
}

// Reason says why an order was canceled.
type Reason string

// Cancellation reasons; an order that is not canceled has none.
const (
	ReasonOutOfStock    Reason = "OUT_OF_STOCK"
	ReasonPaymentFailed Reason = "PAYMENT_FAILED"
	ReasonTimeout       Reason = "TIMEOUT"
)

// Item is one line of an order. UnitPrice is in minor units of the order's currency.
type Item struct {
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	UnitPrice int64  `json:"unitPrice"`
}

// Draft is what a customer asks for; New turns a valid one into an Order at the list prices.
type Draft struct {
	CustomerID   string
	Currency     string
	PaymentToken string
	Lines        []Line
	// Channel is where the order is placed; empty: DefaultChannel.
	Channel Channel
}

// Line is one line a customer asks for. UnitPrice, when set, is the price the customer was
// shown: it must still be the list price. The client never sets what it pays.
type Line struct {
	SKU       string
	Qty       int64
	UnitPrice *int64
}

// Price is what one unit of a SKU costs, in minor units of Currency; an operator sets it.
type Price struct {
	SKU       string `json:"sku"`
	UnitPrice int64  `json:"unitPrice"`
	Currency  string `json:"currency"`
}

// Validate checks an operator's price against the input bounds.
func (p Price) Validate() error {
	if err := ValidateSKU(p.SKU); err != nil {
		return err
	}
	if p.UnitPrice < 0 || p.UnitPrice > MaxUnitPrice {
		return fault.Errorf(fault.Invalid, "unitPrice must be from 0 to %d (minor units), got %d", MaxUnitPrice, p.UnitPrice)
	}
	if !isCurrency(p.Currency) {
		return fault.Errorf(fault.Invalid, "currency must be 3 capital letters (ISO 4217), got %q", excerpt(p.Currency))
	}
	return nil
}

// Codes of the answers about prices (docs/architecture.md, "Prices").
const (
	CodeUnknownSKU       = "unknown_sku"
	CodeCurrencyMismatch = "currency_mismatch"
	CodePriceChanged     = "price_changed"
)

// CodeSoldOut is the code of the 409 that POST /orders answers for a SKU the order service knows
// the inventory sold out (it heard StockDepleted, and no StockReplenished since); the body names
// the SKU in "sku". See docs/architecture.md, "Sold out".
const CodeSoldOut = "sold_out"

// SoldOut is the error of an order for sku, known to be sold out.
func SoldOut(sku string) error {
	err := fault.Reasoned(fault.Conflict, CodeSoldOut, "%s is sold out", sku)
	err.Fields = map[string]string{"sku": sku}
	return err
}

// CodeConcurrentWrite is the code of the conflict a writer meets when another appended the
// order's next event, or saved its projection, first: a request answers 409 (try again), a
// consumer retries.
const CodeConcurrentWrite = "concurrent_write"

// Order is a customer's order and where its saga stands.
type Order struct {
	ID           uuid.UUID
	CustomerID   string
	Status       Status
	Reason       Reason   // empty unless Status is Canceled
	Delivery     Delivery // NoDelivery until the shipping service schedules one
	Items        []Item
	Amount       int64 // sum of Qty*UnitPrice, minor units
	Currency     string
	PaymentToken string
	// TraceID is the trace the order's saga runs in, so that steps started without an incoming
	// message (the deadline sweeper) still join it.
	TraceID    string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	DeadlineAt time.Time // a still PENDING order is canceled with Timeout after this
	// Channel is where the order was placed (web, app, api); empty for an order placed before
	// OrderCreated v2.
	Channel Channel
	// Version is the seq of the order's last own event in the event store (0: none yet).
	Version int
	// IdempotencyKey and RequestHash tie the order to the request that placed it ("" for none).
	IdempotencyKey string
	RequestHash    string
}

// Channel is where a customer placed an order (OrderCreated v2).
type Channel string

// The channels an order may come from; a client that names none is DefaultChannel.
const (
	ChannelWeb     Channel = "web"
	ChannelApp     Channel = "app"
	ChannelAPI     Channel = "api"
	DefaultChannel         = ChannelAPI
)

// Valid reports whether c is one of the channels.
func (c Channel) Valid() bool { return c == ChannelWeb || c == ChannelApp || c == ChannelAPI }

// CreatedData is the data of OrderCreated.
type CreatedData struct {
	OrderID      string `json:"orderId"`
	CustomerID   string `json:"customerId"`
	Items        []Item `json:"items"`
	Amount       int64  `json:"amount"`
	Currency     string `json:"currency"`
	PaymentToken string `json:"paymentToken"`
	// Channel is OrderCreated v2's: absent from v1 events (upcast as they are: empty).
	Channel Channel `json:"channel,omitempty"`
}

// CompletedData is the data of OrderCompleted.
type CompletedData struct {
	OrderID  string `json:"orderId"`
	Items    []Item `json:"items"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// CanceledData is the data of OrderCanceled.
type CanceledData struct {
	OrderID string `json:"orderId"`
	Reason  Reason `json:"reason"`
	Items   []Item `json:"items"`
}

// TimelineEntry is one event in an order's saga timeline: one the order emitted (Source
// "order-service") or one it consumed (Source = the topic it came from).
type TimelineEntry struct {
	EventID    string          `json:"eventId"`
	EventType  string          `json:"eventType"`
	Source     string          `json:"source"`
	OccurredAt time.Time       `json:"occurredAt"`
	RecordedAt time.Time       `json:"recordedAt"`
	Data       json.RawMessage `json:"data"`
}

// SourceSelf is the timeline source of the events the order service emits itself.
const SourceSelf = "order-service"

// New returns a PENDING order with id id, placed at now, that times out after deadline, and the
// OrderCreated event that starts its saga. Each line is priced from prices (the list, by SKU): a
// SKU without a price is a fault.Unprocessable (unknown_sku), an order whose currency is not its
// prices' likewise (currency_mismatch), and a line whose UnitPrice differs from the list a
// fault.Conflict (price_changed). d must have passed Validate.
func New(id uuid.UUID, d Draft, prices map[string]Price, now time.Time, deadline time.Duration) (Order, messaging.Event, error) {
	if err := d.Validate(); err != nil {
		return Order{}, messaging.Event{}, err
	}
	items := make([]Item, len(d.Lines))
	for i, l := range d.Lines {
		p, ok := prices[l.SKU]
		switch {
		case !ok:
			return Order{}, messaging.Event{}, fault.Reasoned(fault.Unprocessable, CodeUnknownSKU, "items[%d].sku: %s has no price", i, l.SKU)
		case p.Currency != d.Currency:
			return Order{}, messaging.Event{}, fault.Reasoned(fault.Unprocessable, CodeCurrencyMismatch,
				"items[%d].sku: %s is priced in %s, the order is in %s", i, l.SKU, p.Currency, d.Currency)
		case l.UnitPrice != nil && *l.UnitPrice != p.UnitPrice:
			return Order{}, messaging.Event{}, fault.Reasoned(fault.Conflict, CodePriceChanged,
				"items[%d].unitPrice: %s now costs %d, not %d", i, l.SKU, p.UnitPrice, *l.UnitPrice)
		}
		items[i] = Item{SKU: l.SKU, Qty: l.Qty, UnitPrice: p.UnitPrice}
	}
	amount, err := total(items)
	if err != nil {
		return Order{}, messaging.Event{}, err
	}
	channel := d.Channel
	if channel == "" {
		channel = DefaultChannel
	}
	o := Order{
		ID:           id,
		CustomerID:   d.CustomerID,
		Channel:      channel,
		Status:       StatusPending,
		Items:        items,
		Amount:       amount,
		Currency:     d.Currency,
		PaymentToken: d.PaymentToken,
		CreatedAt:    now,
		UpdatedAt:    now,
		DeadlineAt:   now.Add(deadline),
	}
	return o, messaging.Event{Type: EventOrderCreated, Data: CreatedData{
		OrderID:      id.String(),
		CustomerID:   o.CustomerID,
		Items:        o.Items,
		Amount:       o.Amount,
		Currency:     o.Currency,
		PaymentToken: o.PaymentToken,
		Channel:      o.Channel,
	}}, nil
}

// CreatedV1 returns OrderCreated e as version 1 has it: without the channel (v2's).
func CreatedV1(e messaging.Event) messaging.Event {
	if d, ok := e.Data.(CreatedData); ok {
		d.Channel = ""
		e.Data = d
	}
	return e
}

// SKUs returns the SKUs of d's lines, in order.
func (d Draft) SKUs() []string {
	out := make([]string, len(d.Lines))
	for i, l := range d.Lines {
		out[i] = l.SKU
	}
	return out
}

// Validate checks the input bounds of a new order, before any price is looked up. Each error is
// a fault.Invalid whose message names the field.
func (d Draft) Validate() error {
	if err := checkText("customerId", d.CustomerID); err != nil {
		return err
	}
	if err := checkText("paymentToken", d.PaymentToken); err != nil {
		return err
	}
	if !isCurrency(d.Currency) {
		return fault.Errorf(fault.Invalid, "currency must be 3 capital letters (ISO 4217), got %q", excerpt(d.Currency))
	}
	if d.Channel != "" && !d.Channel.Valid() {
		return fault.Errorf(fault.Invalid, "channel must be one of web, app, api, got %q", excerpt(string(d.Channel)))
	}
	switch {
	case len(d.Lines) == 0:
		return fault.Errorf(fault.Invalid, "items must hold at least 1 line")
	case len(d.Lines) > MaxItems:
		return fault.Errorf(fault.Invalid, "items must hold at most %d lines, got %d", MaxItems, len(d.Lines))
	}
	seen := make(map[string]int, len(d.Lines))
	for i, it := range d.Lines {
		if err := ValidateSKU(it.SKU); err != nil {
			return fault.Errorf(fault.Invalid, "items[%d].sku: %s", i, fault.Message(err))
		}
		if first, dup := seen[it.SKU]; dup {
			return fault.Errorf(fault.Invalid, "items[%d].sku: %s is already on line %d; put one line per SKU", i, it.SKU, first)
		}
		seen[it.SKU] = i
		switch {
		case it.Qty < 1 || it.Qty > MaxQty:
			return fault.Errorf(fault.Invalid, "items[%d].qty must be from 1 to %d, got %d", i, MaxQty, it.Qty)
		case it.UnitPrice != nil && (*it.UnitPrice < 0 || *it.UnitPrice > MaxUnitPrice):
			return fault.Errorf(fault.Invalid, "items[%d].unitPrice must be from 0 to %d (minor units), got %d", i, MaxUnitPrice, *it.UnitPrice)
		}
	}
	return nil
}

// checkText checks an identifier or token a client sends: 1 to MaxTextLen printable characters
// (letters, marks, numbers, punctuation, symbols and the ASCII space; no control characters,
// which PostgreSQL could not store (NUL) or a log line would misrender).
func checkText(field, s string) error {
	n := utf8.RuneCountInString(s)
	switch {
	case n == 0:
		return fault.Errorf(fault.Invalid, "%s is required", field)
	case n > MaxTextLen:
		return fault.Errorf(fault.Invalid, "%s must be at most %d characters, got %d", field, MaxTextLen, n)
	case !utf8.ValidString(s):
		return fault.Errorf(fault.Invalid, "%s must be valid UTF-8", field)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return fault.Errorf(fault.Invalid, "%s must hold printable characters only, not %U", field, r)
		}
	}
	return nil
}

// ValidateSKU accepts 1 to MaxSKULen characters of letters, digits, '.', '_' and '-'.
func ValidateSKU(sku string) error {
	if sku == "" || len(sku) > MaxSKULen {
		return fault.Errorf(fault.Invalid, "a SKU has 1 to %d characters, got %d", MaxSKULen, len(sku))
	}
	for _, c := range []byte(sku) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fault.Errorf(fault.Invalid, "a SKU holds only letters, digits, '.', '_' and '-', not %q", excerpt(sku))
		}
	}
	return nil
}

// excerpt shortens a client's value for an error message.
func excerpt(s string) string {
	if len(s) <= 70 {
		return s
	}
	return strings.ToValidUTF8(s[:64], "") + "…"
}

func isCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, c := range []byte(s) {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

// total sums qty*unitPrice over items, refusing a total that does not fit an int64 rather than
// letting it wrap into a small or negative charge. Items must be validated (qty ≥ 1, price ≥ 0).
func total(items []Item) (int64, error) {
	var sum int64
	for i, it := range items {
		if it.UnitPrice > 0 && it.Qty > math.MaxInt64/it.UnitPrice {
			return 0, fault.Errorf(fault.Invalid, "items[%d]: qty × unitPrice is too large", i)
		}
		line := it.Qty * it.UnitPrice
		if sum > math.MaxInt64-line {
			return 0, fault.Errorf(fault.Invalid, "items: the order total is too large")
		}
		sum += line
	}
	return sum, nil
}

// CheckPayment reports whether a payment event's terms are the order's: the same amount in the
// same currency. One that is not is not about this order (a bug, or a forged event): a
// fault.Invalid, never applied.
func (o Order) CheckPayment(amount int64, currency string) error {
	if amount != o.Amount || currency != o.Currency {
		return fault.Errorf(fault.Invalid, "the payment is of %d %s, the order %s is of %d %s", amount, currency, o.ID, o.Amount, o.Currency)
	}
	return nil
}

// Complete ends a pending order as COMPLETED at now and returns the OrderCompleted event. On a
// terminal order it changes nothing and reports ok=false (ignored): a late event never moves an
// order that has ended.
func (o *Order) Complete(now time.Time) (e messaging.Event, ok bool) {
	if o.Status != StatusPending {
		return messaging.Event{}, false
	}
	o.Status, o.UpdatedAt = StatusCompleted, now
	return messaging.Event{Type: EventOrderCompleted, Data: CompletedData{
		OrderID:  o.ID.String(),
		Items:    o.Items,
		Amount:   o.Amount,
		Currency: o.Currency,
	}}, true
}

// Cancel ends a pending order as CANCELED for reason at now and returns the OrderCanceled event,
// from which the other services compensate what they did. On a terminal order it changes
// nothing and reports ok=false (ignored), like Complete.
func (o *Order) Cancel(reason Reason, now time.Time) (e messaging.Event, ok bool) {
	if o.Status != StatusPending {
		return messaging.Event{}, false
	}
	o.Status, o.Reason, o.UpdatedAt = StatusCanceled, reason, now
	return messaging.Event{Type: EventOrderCanceled, Data: CanceledData{
		OrderID: o.ID.String(),
		Reason:  reason,
		Items:   o.Items,
	}}, true
}

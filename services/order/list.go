package order

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"outboxsaga.dev/messaging/fault"
)

// Step is the saga step an order waits at: the service whose event moves it on next.
type Step string

// The steps of the saga an order may wait at; StepNone for an order that waits for nothing (a
// canceled one, or a delivered one).
const (
	StepNone      Step = ""
	StepInventory Step = "inventory" // PENDING, no answer from the inventory yet
	StepPayment   Step = "payment"   // PENDING, stock reserved, no answer from the payment yet
	StepShipping  Step = "shipping"  // COMPLETED, not delivered yet
)

// ParseStep reads a step's name ("inventory", "payment", "shipping").
func ParseStep(s string) (Step, error) {
	switch st := Step(s); st {
	case StepInventory, StepPayment, StepShipping:
		return st, nil
	}
	return StepNone, fault.Errorf(fault.Invalid, "waiting must be one of inventory, payment, shipping, got %q", excerpt(s))
}

// MaxListLimit caps the orders one page of a list holds; DefaultListLimit is a page's size when
// the caller names none.
const (
	MaxListLimit     = 500
	DefaultListLimit = 50
)

// ListFilter selects the orders an operator lists, newest first. Zero fields select everything.
type ListFilter struct {
	// ID keeps the one order with this id (uuid.Nil: any).
	ID     uuid.UUID
	Status Status
	Reason Reason
	// OlderThan keeps the orders placed at least this long before Now.
	OlderThan time.Duration
	// Waiting keeps the orders waiting at this step.
	Waiting Step
	// Limit is the page's size (1..MaxListLimit; 0: DefaultListLimit).
	Limit int
	// Before continues a list after the cursor a previous page returned (zero: the newest).
	Before Cursor
	// Now is the time OlderThan counts from.
	Now time.Time
}

// Validate checks the filter's values.
func (f ListFilter) Validate() error {
	switch f.Status {
	case "", StatusPending, StatusCompleted, StatusCanceled:
	default:
		return fault.Errorf(fault.Invalid, "status must be one of PENDING, COMPLETED, CANCELED, got %q", excerpt(string(f.Status)))
	}
	switch f.Reason {
	case "", ReasonOutOfStock, ReasonPaymentFailed, ReasonTimeout:
	default:
		return fault.Errorf(fault.Invalid, "reason must be one of OUT_OF_STOCK, PAYMENT_FAILED, TIMEOUT, got %q", excerpt(string(f.Reason)))
	}
	if f.OlderThan < 0 {
		return fault.Errorf(fault.Invalid, "olderThan must not be negative")
	}
	if f.Limit < 0 || f.Limit > MaxListLimit {
		return fault.Errorf(fault.Invalid, "limit must be 1 to %d, got %d", MaxListLimit, f.Limit)
	}
	return nil
}

// Cursor is where a page of a list ended: the last order's creation time and id (orders are
// listed by creation time, newest first, ties by id).
type Cursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// IsZero reports whether c continues nothing (the first page).
func (c Cursor) IsZero() bool { return c.ID == uuid.Nil }

// String encodes the cursor for a URL: opaque to clients.
func (c Cursor) String() string {
	if c.IsZero() {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + "." + c.ID.String()))
}

// ParseCursor decodes what Cursor.String encoded ("" is the zero cursor).
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	bad := fault.Errorf(fault.Invalid, "before must be a cursor a previous page returned, got %q", excerpt(s))
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, bad
	}
	micros, id, ok := strings.Cut(string(raw), ".")
	if !ok {
		return Cursor{}, bad
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		return Cursor{}, bad
	}
	u, err := uuid.Parse(id)
	if err != nil || u == uuid.Nil {
		return Cursor{}, bad
	}
	return Cursor{CreatedAt: time.UnixMicro(us).UTC(), ID: u}, nil
}

// Summary is one order of a list: what an operator scans for, without its items.
type Summary struct {
	ID         uuid.UUID
	CustomerID string
	Status     Status
	Reason     Reason
	Delivery   Delivery
	Amount     int64
	Currency   string
	TraceID    string
	Waiting    Step
	CreatedAt  time.Time
	UpdatedAt  time.Time
	DeadlineAt time.Time
}

// ListPage is one page of a list and the cursor of the next (zero: the list ends here).
type ListPage struct {
	Orders []Summary
	Next   Cursor
}

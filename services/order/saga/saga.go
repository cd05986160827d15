// Package saga holds the order service's saga steps: one handler per event type it consumes
// from inventory-events, payment-events and shipping-events, the Router that lists them, and the
// deadline sweeper that cancels orders whose saga did not end in time.
//
// Every step runs in one transaction (messaging/postgres.Transactional): the inbox row, the
// events the order decides (appended to its event store, which Debezium streams), the projection
// the fold makes of them and the timeline rows commit together, so a redelivered event changes
// nothing and a late one never moves an order that has ended.
package saga

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/fault"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/order"
	"outboxsaga.dev/order/postgres"
)

// Topics are the topics the order service consumes.
var Topics = []string{messaging.TopicInventory, messaging.TopicPayment, messaging.TopicShipping}

// Steps runs the saga steps against the order database.
type Steps struct {
	db      *sql.DB
	orders  *postgres.Orders
	events  *postgres.Events
	metrics *Metrics
	now     func() time.Time
}

// New returns the saga steps over db; the order's events are appended to events.
func New(db *sql.DB, orders *postgres.Orders, events *postgres.Events, metrics *Metrics) *Steps {
	return &Steps{db: db, orders: orders, events: events, metrics: metrics, now: time.Now}
}

// Router returns the router of every event type the order service consumes. Anything else on
// its topics is poison (the Router dead-letters it). Every step is database work alone, so every
// one may run in a batch's transaction (HandleBatchable).
func (s *Steps) Router() *messaging.Router {
	r := messaging.NewRouter()
	r.HandleBatchable("StockReservationFailed", 1, s.StockReservationFailed)
	r.HandleBatchable("PaymentAuthorized", 1, s.PaymentAuthorized)
	r.HandleBatchable("PaymentFailed", 1, s.PaymentFailed)
	// Events that move nothing here but belong to the order's timeline.
	r.HandleBatchable("StockReserved", 1, s.Record)
	r.HandleBatchable("StockReleased", 1, s.Record)
	r.HandleBatchable("StockCommitted", 1, s.Record)
	r.HandleBatchable("PaymentVoided", 1, s.PaymentVoided)
	r.HandleBatchable("DeliveryScheduled", 1, s.DeliveryScheduled)
	r.HandleBatchable("DeliveryShipped", 1, s.DeliveryShipped)
	r.HandleBatchable("DeliveryDelivered", 1, s.DeliveryDelivered)
	return r
}

// StockReservationFailed cancels the order as OUT_OF_STOCK: inventory reserved nothing, so
// there is nothing to compensate, but OrderCanceled tells payment not to charge.
func (s *Steps) StockReservationFailed(ctx context.Context, m *messaging.Message) error {
	return s.apply(ctx, m, nil, func(o *order.Order, now time.Time) (messaging.Event, bool) {
		return o.Cancel(order.ReasonOutOfStock, now)
	})
}

// PaymentAuthorized completes the order; OrderCompleted tells inventory to commit the
// reservation. A payment of another amount or currency than the order's is poison.
func (s *Steps) PaymentAuthorized(ctx context.Context, m *messaging.Message) error {
	return s.apply(ctx, m, checkPayment, func(o *order.Order, now time.Time) (messaging.Event, bool) {
		return o.Complete(now)
	})
}

// PaymentFailed cancels the order as PAYMENT_FAILED; OrderCanceled tells inventory to release
// the reservation. A payment of another amount or currency than the order's is poison.
func (s *Steps) PaymentFailed(ctx context.Context, m *messaging.Message) error {
	return s.apply(ctx, m, checkPayment, func(o *order.Order, now time.Time) (messaging.Event, bool) {
		return o.Cancel(order.ReasonPaymentFailed, now)
	})
}

// Record adds an event that changes nothing about the order (StockReserved, StockReleased,
// StockCommitted) to the order's timeline.
func (s *Steps) Record(ctx context.Context, m *messaging.Message) error {
	return s.apply(ctx, m, nil, nil)
}

// PaymentVoided records the void in the order's timeline, if it is of the order's payment.
func (s *Steps) PaymentVoided(ctx context.Context, m *messaging.Message) error {
	return s.apply(ctx, m, checkPayment, nil)
}

// DeliveryScheduled, DeliveryShipped and DeliveryDelivered record how far the order's delivery
// has come, forward only (a late or replayed event changes nothing), and add the event to the
// order's timeline. A delivery event for an order that is not COMPLETED is poison.
func (s *Steps) DeliveryScheduled(ctx context.Context, m *messaging.Message) error {
	return s.apply(ctx, m, track(order.DeliveryPreparing), nil)
}

// DeliveryShipped: see DeliveryScheduled.
func (s *Steps) DeliveryShipped(ctx context.Context, m *messaging.Message) error {
	return s.apply(ctx, m, track(order.DeliveryShipped), nil)
}

// DeliveryDelivered: see DeliveryScheduled.
func (s *Steps) DeliveryDelivered(ctx context.Context, m *messaging.Message) error {
	return s.apply(ctx, m, track(order.DeliveryDelivered), nil)
}

// track records on the order that its delivery reached d.
func track(d order.Delivery) check {
	return func(m *messaging.Message, o *order.Order, now time.Time) error {
		if _, err := o.Track(d, now); err != nil {
			return messaging.Permanent(fmt.Errorf("%s %s: %w", m.EventType, m.EventID, err))
		}
		return nil
	}
}

// check is what a step verifies of the message against the locked order, or records on it,
// before it decides.
type check func(m *messaging.Message, o *order.Order, now time.Time) error

// checkPayment decodes the amount and currency of a payment event and checks them against the
// order's: a mismatch is poison (dead-lettered, never applied).
func checkPayment(m *messaging.Message, o *order.Order, _ time.Time) error {
	var d struct {
		Amount   int64  `json:"amount"`
		Currency string `json:"currency"`
	}
	if err := m.DecodeData(&d); err != nil {
		return err
	}
	if err := o.CheckPayment(d.Amount, d.Currency); err != nil {
		return messaging.Permanent(fmt.Errorf("%s %s: %w", m.EventType, m.EventID, err))
	}
	return nil
}

// decision is what a step does to a locked order at now: the event to emit, and false when the
// order is terminal and the step is ignored.
type decision func(o *order.Order, now time.Time) (messaging.Event, bool)

// outcome is what one step did, for the log and the metrics after its transaction committed.
type outcome struct {
	ran     bool // false: a redelivery the inbox skipped
	order   order.Order
	emitted messaging.Envelope // zero when nothing was emitted
	ignored bool               // the step would move the order, but it had ended already
}

// apply runs verify (nil: none) and decide (nil: only record) on the order m is about, in one
// transaction with the inbox check, the timeline and the outbox (a batch's, in a batch). It logs
// through the message's logger and counts once that transaction committed.
func (s *Steps) apply(ctx context.Context, m *messaging.Message, verify check, decide decision) error {
	log := zerolog.Ctx(ctx)
	id, err := orderID(m)
	if err != nil {
		return err
	}
	var out outcome
	step := msgpg.Transactional(s.db, func(ctx context.Context, tx *sql.Tx, m *messaging.Message) (err error) {
		out, err = s.step(ctx, tx, m, id, verify, decide)
		return err
	})
	if err := step(ctx, m); err != nil {
		return err
	}
	messaging.AfterCommit(ctx, func() {
		switch {
		case !out.ran:
			log.Info().Msg("duplicate event skipped")
		case out.ignored:
			log.Info().Str("status", string(out.order.Status)).Msg("late event recorded; order already ended, ignored")
		case out.emitted.EventID != "":
			s.metrics.terminal(out.order)
			log.Info().Str("status", string(out.order.Status)).Str("reason", string(out.order.Reason)).
				Str("emitted", out.emitted.EventType).Str("emittedEventId", out.emitted.EventID).Msg("order ended")
		default:
			log.Info().Str("status", string(out.order.Status)).Msg("event recorded")
		}
	})
	return nil
}

// step is apply's transaction: the order is locked, verify and decide run on a scratch copy, and
// what is written is the fold of the locked order and what happened: the event decided (appended
// to the event store) and, for a delivery event that moved the delivery, the fact recorded in the
// timeline at now.
func (s *Steps) step(ctx context.Context, tx *sql.Tx, m *messaging.Message, id uuid.UUID, verify check, decide decision) (outcome, error) {
	now := s.now().UTC().Truncate(time.Microsecond)
	before, err := s.orders.Lock(ctx, tx, id)
	if fault.Code(err) == fault.NotFound {
		// Retried, not poison at first sight: the order may be committed and yet not visible here.
		// Postgres flushes a commit record to the WAL before it makes the transaction visible to
		// other sessions, and a WAL sender may decode and ship it in between; on a loaded box an
		// event caused by the order (its StockReserved, ~130 ms later) once arrived inside that
		// window and was dead-lettered (docs/chaos/run-2026-12-01-batches-FAIL.md). Retry tries
		// again with backoff; an event of an order that really does not exist is dead-lettered
		// when its attempts are spent.
		return outcome{}, fmt.Errorf("%s %s: %w", m.EventType, m.EventID, err)
	}
	if err != nil {
		return outcome{}, err
	}
	scratch := before
	var (
		e       messaging.Event
		changed bool
	)
	if verify != nil {
		if err := verify(m, &scratch, now); err != nil {
			return outcome{}, fmt.Errorf("update order %s: %w", id, err)
		}
	}
	if decide != nil {
		e, changed = decide(&scratch, now)
	}
	after := before
	entry := order.TimelineEntry{EventID: m.EventID, EventType: m.EventType, Source: m.Topic, OccurredAt: m.OccurredAt, Data: m.Data}
	if _, ok := order.DeliveryOf(m.EventType); ok && scratch.Delivery != before.Delivery {
		entry.RecordedAt = now
		if err := after.Apply(order.Recorded{EventID: m.EventID, EventType: m.EventType, OccurredAt: now}, s.events.Upcaster()); err != nil {
			return outcome{}, err
		}
	}
	out := outcome{ran: true, ignored: decide != nil && !changed}
	var emitted []messaging.Envelope
	if changed {
		d, err := s.events.Decide(after, m.NextSpan(), e, order.EventVersion, now, order.Meta{})
		if err != nil {
			return outcome{}, err
		}
		if err := s.events.Append(ctx, tx, d); err != nil {
			return outcome{}, err
		}
		after, out.emitted = d.State, d.Envelope
		emitted = append(emitted, d.Envelope)
	}
	if err := s.orders.Save(ctx, tx, before, after); err != nil {
		return outcome{}, err
	}
	if err := s.orders.Record(ctx, tx, id, entry); err != nil {
		return outcome{}, err
	}
	if err := s.orders.Record(ctx, tx, id, postgres.Emitted(emitted)...); err != nil {
		return outcome{}, err
	}
	out.order = after
	return out, nil
}

// orderID returns the order m is about: its data.orderId, which DecodeData checks against its
// aggregate id (the Kafka key). A message that does not name an order by uuid is poison.
func orderID(m *messaging.Message) (uuid.UUID, error) {
	var data struct {
		OrderID string `json:"orderId"`
	}
	if err := m.DecodeData(&data); err != nil {
		return uuid.Nil, err
	}
	id, err := uuid.Parse(data.OrderID)
	if err != nil {
		return uuid.Nil, messaging.Permanent(fmt.Errorf("%s %s: order id %q: %w", m.EventType, m.EventID, data.OrderID, err))
	}
	return id, nil
}

// Package saga holds the payment service's saga steps: one handler per consumed event type, and
// the Router that lists them.
//
//	inventory-events StockReserved → charge the order (stockreserved.go)
//	order-events     OrderCanceled → void a charge, or remember the cancel (ordercanceled.go)
//
// The two topics are not ordered relative to each other, so either event may come first, or
// OrderCanceled may come while StockReserved's gateway call is in flight; the payment row's
// status and its cancel_requested flag make every order of arrival end the same way.
package saga

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/payment"
	"outboxsaga.dev/payment/postgres"
)

// Topics the saga consumes, and the consumer group it consumes them in.
const (
	TopicInventory = "inventory-events"
	TopicOrder     = "order-events"
	ConsumerGroup  = "payment-service"
)

// Handlers runs the saga steps against the service database and the card gateway.
type Handlers struct {
	db       *sql.DB
	outbox   *msgpg.Outbox
	payments *postgres.Payments
	gateway  payment.Gateway
	log      zerolog.Logger
	settled  *prometheus.CounterVec
}

// New returns the saga steps. Their metrics are registered on reg.
func New(db *sql.DB, outbox *msgpg.Outbox, gateway payment.Gateway, log zerolog.Logger, reg prometheus.Registerer) (*Handlers, error) {
	settled := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "payment_payments_total",
		Help: "Payments that reached a status other than AUTHORIZING (AUTHORIZED, FAILED, VOIDED, CANCELED).",
	}, []string{"status"})
	if err := reg.Register(settled); err != nil {
		return nil, fmt.Errorf("register saga metrics: %w", err)
	}
	return &Handlers{db: db, outbox: outbox, payments: postgres.NewPayments(db), gateway: gateway, log: log, settled: settled}, nil
}

// Router lists the saga steps: the events the payment service acts on, and the ones on its topics
// that it knowingly skips. Anything else is dead-lettered by the Router.
func (h *Handlers) Router() *messaging.Router {
	r := messaging.NewRouter()
	r.Handle("StockReserved", 1, h.StockReserved)
	r.Handle("OrderCanceled", 1, h.OrderCanceled)

	r.Ignore("StockReservationFailed", 1) // the order is canceled; OrderCanceled follows
	r.Ignore("StockReleased", 1)
	r.Ignore("StockCommitted", 1)
	r.Ignore("OrderCreated", 1) // StockReserved carries the payment terms forward
	r.Ignore("OrderCompleted", 1)
	return r
}

// logger returns the logger of one saga step: every line carries the order, event and trace.
func (h *Handlers) logger(m *messaging.Message, orderID string) zerolog.Logger {
	return h.log.With().Str("orderId", orderID).Str("eventId", m.EventID).Str("eventType", m.EventType).
		Str("traceId", m.TraceID).Logger()
}

// reached counts a payment that reached its status.
func (h *Handlers) reached(s payment.Status) {
	h.settled.WithLabelValues(string(s)).Inc()
}

// decodeData reads m's data into v. Data that does not decode will never decode: Permanent.
func decodeData(m *messaging.Message, v any) error {
	if err := json.Unmarshal(m.Data, v); err != nil {
		return messaging.Permanent(fmt.Errorf("decode %s data of event %s: %w", m.EventType, m.EventID, err))
	}
	return nil
}

// emit writes events to the outbox in tx, each as a child span of m's trace.
func (h *Handlers) emit(ctx context.Context, tx *sql.Tx, m *messaging.Message, orderID string, events []payment.Event) error {
	for _, e := range events {
		if _, err := h.outbox.Emit(ctx, tx, traceparent(m).Child(), payment.AggregateType, orderID, 1, messaging.Event{Type: e.Type, Data: e.Data}); err != nil {
			return fmt.Errorf("emit %s for order %s: %w", e.Type, orderID, err)
		}
	}
	return nil
}

// traceparent returns m's trace context. The consumer's Decode always sets it; a message built
// by hand (a replay tool, a test) may carry only the envelope's traceId.
func traceparent(m *messaging.Message) messaging.Traceparent {
	if !m.Traceparent.IsZero() {
		return m.Traceparent
	}
	if tp, err := messaging.NewTraceparentIn(m.TraceID); err == nil {
		return tp
	}
	return messaging.NewTraceparent()
}

// void gives back the order's charge at the gateway, then records it in one transaction: VOIDED
// and PaymentVoided, and, when inbox is set, m's inbox row. Every step of it is safe to repeat:
// the gateway's void is idempotent, and a payment no longer AUTHORIZED is left alone.
func (h *Handlers) void(ctx context.Context, log zerolog.Logger, m *messaging.Message, orderID string, inbox bool) error {
	res, err := h.gateway.Void(ctx, orderID, payment.IdempotencyKey(orderID))
	if err != nil {
		return fmt.Errorf("void payment of order %s: %w", orderID, err)
	}
	var (
		voided payment.Payment
		events []payment.Event
	)
	err = msgpg.WithTx(ctx, h.db, func(tx *sql.Tx) error {
		if inbox {
			first, err := msgpg.MarkProcessed(ctx, tx, m)
			if err != nil || !first {
				return err
			}
		}
		err := h.payments.Update(ctx, tx, orderID, func(p *payment.Payment) error {
			next, evs, err := p.Void(res)
			voided, events = next, evs
			*p = next
			return err
		})
		if err != nil {
			return err
		}
		return h.emit(ctx, tx, m, orderID, events)
	})
	if err != nil {
		return fmt.Errorf("record void of order %s: %w", orderID, err)
	}
	if len(events) > 0 {
		h.reached(voided.Status)
		log.Info().Str("pgTxnId", voided.PgTxnID).Msg("payment voided")
	}
	return nil
}

package saga

import (
	"context"
	"database/sql"
	"time"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/order"
	"outboxsaga.dev/order/postgres"
)

// sweepBatch is how many expired orders one sweep transaction cancels at most, to keep its
// locks short.
const sweepBatch = 100

// Sweeper cancels orders whose saga did not end before their deadline (reason TIMEOUT). The
// OrderCanceled it emits makes inventory release and payment void what they did, as for any
// other cancel. Several instances may sweep at once: each skips the orders another has locked.
type Sweeper struct {
	db       *sql.DB
	orders   *postgres.Orders
	events   *postgres.Events
	metrics  *Metrics
	log      zerolog.Logger
	interval time.Duration
	now      func() time.Time
}

// NewSweeper returns a sweeper that looks for expired orders every interval; the cancellations
// are appended to events.
func NewSweeper(db *sql.DB, orders *postgres.Orders, events *postgres.Events, metrics *Metrics, log zerolog.Logger, interval time.Duration) *Sweeper {
	return &Sweeper{db: db, orders: orders, events: events, metrics: metrics, log: log, interval: interval, now: time.Now}
}

// Run sweeps every interval until ctx is done, then returns nil. A failed sweep is logged and
// tried again at the next tick: the orders stay PENDING and expired until then.
func (s *Sweeper) Run(ctx context.Context) error {
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		// A full batch means more may be waiting: go on without waiting for the next tick.
		for {
			n, err := s.Sweep(ctx)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Error().Err(err).Msg("deadline sweep failed")
				}
				break
			}
			if n < sweepBatch {
				break
			}
		}
	}
}

// Sweep cancels up to one batch of expired orders in one transaction and returns how many.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	now := s.now().UTC().Truncate(time.Microsecond)
	type ended struct {
		order order.Order
		event messaging.Envelope
	}
	var done []ended
	err := msgpg.WithTx(ctx, s.db, func(tx *sql.Tx) error {
		done = done[:0]
		expired, err := s.orders.LockExpired(ctx, tx, now, sweepBatch)
		if err != nil {
			return err
		}
		for _, before := range expired {
			scratch := before
			e, ok := scratch.Cancel(order.ReasonTimeout, now)
			if !ok {
				continue // only PENDING orders are selected; kept for safety
			}
			d, err := s.events.Decide(before, traceOf(before), e, order.EventVersion, now, order.Meta{})
			if err != nil {
				return err
			}
			if err := s.events.Append(ctx, tx, d); err != nil {
				return err
			}
			if err := s.orders.Save(ctx, tx, before, d.State); err != nil {
				return err
			}
			done = append(done, ended{order: d.State, event: d.Envelope})
			if err := s.orders.Record(ctx, tx, before.ID, postgres.Emitted([]messaging.Envelope{d.Envelope})...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, d := range done {
		s.metrics.terminal(d.order)
		s.log.Info().Str("orderId", d.order.ID.String()).Str("eventId", d.event.EventID).Str("traceId", d.order.TraceID).
			Str("eventType", d.event.EventType).Str("status", string(d.order.Status)).Str("reason", string(d.order.Reason)).
			Msg("order ended: saga deadline passed")
	}
	return len(done), nil
}

// traceOf returns a new span in o's saga trace, so a timeout shows in the trace of the order.
func traceOf(o order.Order) messaging.Traceparent {
	if tp, err := messaging.NewTraceparentIn(o.TraceID); err == nil {
		return tp
	}
	return messaging.NewTraceparent()
}

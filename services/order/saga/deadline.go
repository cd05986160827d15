package saga

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"outboxsaga.dev/order/app"
)

// Sweeper cancels orders whose saga did not end before their deadline (app.SweepDeadlines) every
// interval, and logs and counts each.
type Sweeper struct {
	app      *app.App
	metrics  *Metrics
	log      zerolog.Logger
	interval time.Duration
}

// NewSweeper returns a sweeper that looks for expired orders every interval.
func NewSweeper(a *app.App, metrics *Metrics, log zerolog.Logger, interval time.Duration) *Sweeper {
	return &Sweeper{app: a, metrics: metrics, log: log, interval: interval}
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
			if n < app.SweepBatch {
				break
			}
		}
	}
}

// Sweep cancels up to one batch of expired orders in one transaction and returns how many.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	done, err := s.app.SweepDeadlines(ctx)
	if err != nil {
		return 0, err
	}
	for _, d := range done {
		s.metrics.terminal(d.Order)
		s.log.Info().Str("orderId", d.Order.ID.String()).Str("eventId", d.Event.EventID).Str("traceId", d.Order.TraceID).
			Str("eventType", d.Event.EventType).Str("status", string(d.Order.Status)).Str("reason", string(d.Order.Reason)).
			Msg("order ended: saga deadline passed")
	}
	return len(done), nil
}

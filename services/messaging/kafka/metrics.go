package kafka

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"outboxsaga.dev/messaging"
)

// Metrics counts messages by event type and outcome, times the handler, counts retries and dead
// letters, and sets the consumer lag (high-water mark − offset − 1) per topic and partition.
// Calling it twice with the same registry reuses the collectors.
//
// Inside a batch (messaging.InBatch) a message is counted once the batch committed, and counted
// as batched too; a message that fails there counts only as the cause of a batch rollback, since
// it is handled, and counted, again on its own.
func Metrics(reg prometheus.Registerer) messaging.Middleware {
	handled := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "messaging_events_handled_total",
		Help: "Messages handled, by event type and outcome (ok, dead_lettered, error).",
	}, []string{"event_type", "outcome"}))
	latency := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "messaging_handler_duration_seconds",
		Help:    "Time to handle one message, retries included (in a batch: until the batch committed).",
		Buckets: prometheus.DefBuckets,
	}, []string{"event_type"}))
	retries := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "messaging_retries_total",
		Help: "Handler retries, by event type.",
	}, []string{"event_type"}))
	deadLetters := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "messaging_dead_letters_total",
		Help: "Messages stored as dead letters, by event type.",
	}, []string{"event_type"}))
	batched := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "messaging_batched_total",
		Help: "Messages committed in a batch (several messages of a partition in one transaction), by event type; counted in messaging_events_handled_total too.",
	}, []string{"event_type"}))
	rollbacks := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "messaging_batch_rollbacks_total",
		Help: "Batches rolled back, by the event type of the message that failed in them; their messages are then handled one by one.",
	}, []string{"event_type"}))
	lag := consumerLag(reg)

	return func(next messaging.Handler) messaging.Handler {
		return func(ctx context.Context, m *messaging.Message) error {
			if hwm, ok := ctx.Value(highWaterMarkKey{}).(func() int64); ok {
				lag.WithLabelValues(m.Topic, itoa(m.Partition)).Set(float64(max(hwm()-m.Offset-1, 0)))
			}
			start := time.Now()
			ctx, rep := withReport(ctx)
			err := next(ctx, m)
			eventType := "unknown" // not a producer-supplied string: keeps label cardinality bounded
			if rep.valid {
				eventType = m.EventType
			}
			inBatch := messaging.InBatch(ctx)
			if err != nil && inBatch {
				if !errors.Is(err, messaging.ErrNotBatchable) {
					rollbacks.WithLabelValues(eventType).Inc()
				}
				return err
			}
			messaging.AfterCommit(ctx, func() {
				latency.WithLabelValues(eventType).Observe(time.Since(start).Seconds())
				handled.WithLabelValues(eventType, rep.outcome(err)).Inc()
				if rep.attempts > 1 {
					retries.WithLabelValues(eventType).Add(float64(rep.attempts - 1))
				}
				if rep.deadLettered {
					deadLetters.WithLabelValues(eventType).Inc()
				}
				if inBatch {
					batched.WithLabelValues(eventType).Inc()
				}
			})
			return err
		}
	}
}

// register registers c, or returns the collector registered before under the same description.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a name clash with a different metric: a programming error
	}
	return c
}

// consumerLag is messaging_consumer_lag on reg: Metrics sets it as each message is handled, the
// Consumer (when given the registry) every LagInterval while it holds the partition.
func consumerLag(reg prometheus.Registerer) *prometheus.GaugeVec {
	return register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "messaging_consumer_lag",
		Help: "Messages behind the partition's high-water mark after the one being handled (or last handled).",
	}, []string{"topic", "partition"}))
}

// consumerLagSeconds is messaging_consumer_lag_seconds on reg, set by the Consumer with
// messaging_consumer_lag.
func consumerLagSeconds(reg prometheus.Registerer) *prometheus.GaugeVec {
	return register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "messaging_consumer_lag_seconds",
		Help: "While records of the partition wait: how long ago the last record taken was appended to it; 0 when caught up.",
	}, []string{"topic", "partition"}))
}

func itoa(p int32) string {
	return strconv.Itoa(int(p))
}

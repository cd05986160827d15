package saga

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"outboxsaga.dev/order"
)

// Metrics counts how sagas end and how long they take.
type Metrics struct {
	outcomes *prometheus.CounterVec
	duration prometheus.Histogram
}

// NewMetrics registers the saga metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "order_saga_outcomes_total",
			Help: "Orders that reached a terminal status, by status and cancellation reason.",
		}, []string{"status", "reason"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "order_saga_duration_seconds",
			Help:    "Time from an order's creation to its terminal status.",
			Buckets: prometheus.ExponentialBucketsRange(0.01, 60, 14),
		}),
	}
	for _, c := range []prometheus.Collector{m.outcomes, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register saga metrics: %w", err)
		}
	}
	return m, nil
}

// terminal counts o, which has just ended.
func (m *Metrics) terminal(o order.Order) {
	m.outcomes.WithLabelValues(string(o.Status), string(o.Reason)).Inc()
	m.duration.Observe(o.UpdatedAt.Sub(o.CreatedAt).Seconds())
}

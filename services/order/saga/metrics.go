package saga

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"outboxsaga.dev/order"
)

// Metrics counts how sagas end and how long they take.
type Metrics struct {
	outcomes *prometheus.CounterVec
	duration prometheus.Histogram
}

// NewMetrics registers the saga metrics on reg (registering twice on one registry panics).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		outcomes: f.NewCounterVec(prometheus.CounterOpts{Name: "order_saga_outcomes_total",
			Help: "Orders that reached a terminal status, by status and cancellation reason."}, []string{"status", "reason"}),
		duration: f.NewHistogram(prometheus.HistogramOpts{Name: "order_saga_duration_seconds",
			Help: "Time from an order's creation to its terminal status.", Buckets: prometheus.ExponentialBucketsRange(0.01, 60, 14)}),
	}
}

// terminal counts o, which has just ended.
func (m *Metrics) terminal(o order.Order) {
	m.outcomes.WithLabelValues(string(o.Status), string(o.Reason)).Inc()
	m.duration.Observe(o.UpdatedAt.Sub(o.CreatedAt).Seconds())
}

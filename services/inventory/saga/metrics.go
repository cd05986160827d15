package saga

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"outboxsaga.dev/inventory"
)

// Metrics counts the saga's decisions on reservations.
type Metrics struct {
	reservations *prometheus.CounterVec
}

// NewMetrics registers the saga metrics on reg. Every outcome is exported from the start, so a
// rate() over a fresh process sees zeros rather than missing series.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reservations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inventory_reservations_total",
			Help: "Saga decisions on reservations, by outcome (reserved, failed, released, committed, ignored).",
		}, []string{"outcome"}),
	}
	if err := reg.Register(m.reservations); err != nil {
		return nil, fmt.Errorf("register saga metrics: %w", err)
	}
	for _, o := range []inventory.Outcome{inventory.OutcomeReserved, inventory.OutcomeFailed,
		inventory.OutcomeReleased, inventory.OutcomeCommitted, inventory.OutcomeIgnored} {
		m.reservations.WithLabelValues(string(o))
	}
	return m, nil
}

// observe counts one committed decision.
func (m *Metrics) observe(o inventory.Outcome) {
	m.reservations.WithLabelValues(string(o)).Inc()
}

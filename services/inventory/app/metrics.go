package app

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"outboxsaga.dev/inventory"
)

// Metrics counts the saga's decisions on reservations.
type Metrics struct{ reservations *prometheus.CounterVec }

// NewMetrics registers the saga metrics on reg (registering twice on one registry panics). Every
// outcome is exported from the start, so a rate() over a fresh process sees zeros.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{reservations: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{Name: "inventory_reservations_total",
		Help: "Saga decisions on reservations, by outcome (reserved, failed, released, committed, ignored)."}, []string{"outcome"})}
	for _, o := range []inventory.Outcome{inventory.OutcomeReserved, inventory.OutcomeFailed, inventory.OutcomeReleased,
		inventory.OutcomeCommitted, inventory.OutcomeIgnored} {
		m.reservations.WithLabelValues(string(o))
	}
	return m
}

// observe counts one committed decision.
func (m *Metrics) observe(o inventory.Outcome) { m.reservations.WithLabelValues(string(o)).Inc() }

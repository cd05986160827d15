package app

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"outboxsaga.dev/shipping"
)

// Metrics counts what happens to deliveries.
type Metrics struct {
	steps   *prometheus.CounterVec // deliveries that reached a status
	ignored prometheus.Counter     // completions of orders that have their delivery
}

// NewMetrics registers the shipping metrics on reg (registering twice on one registry panics).
// Every status is exported from the start, so a rate() over a fresh process sees zeros.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	steps := promauto.With(reg).NewCounterVec(prometheus.CounterOpts{Name: "shipping_delivery_steps_total",
		Help: "Deliveries that reached a status: PREPARING when scheduled, then SHIPPED and DELIVERED."}, []string{"status"})
	for _, s := range []shipping.Status{shipping.StatusPreparing, shipping.StatusShipped, shipping.StatusDelivered} {
		steps.WithLabelValues(string(s))
	}
	ignored := promauto.With(reg).NewCounter(prometheus.CounterOpts{Name: "shipping_completions_ignored_total",
		Help: "OrderCompleted events (under a new event id) for an order that has its delivery already."})
	return &Metrics{steps: steps, ignored: ignored}
}

// reached counts d, which has just reached its status.
func (m *Metrics) reached(d shipping.Delivery) { m.steps.WithLabelValues(string(d.Status)).Inc() }

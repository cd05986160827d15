package app

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"outboxsaga.dev/payment"
)

// Metrics counts payments by the status they reach.
type Metrics struct{ payments *prometheus.CounterVec }

// NewMetrics registers the use cases' metrics on reg (registering twice on one registry panics).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{payments: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{Name: "payment_payments_total",
		Help: "Payments that reached a status other than AUTHORIZING (AUTHORIZED, FAILED, VOIDED, CANCELED)."}, []string{"status"})}
}

// reached counts a payment that has just reached status s.
func (m *Metrics) reached(s payment.Status) { m.payments.WithLabelValues(string(s)).Inc() }

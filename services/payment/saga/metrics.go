package saga

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"outboxsaga.dev/payment"
)

// Metrics counts payments by the status they reach.
type Metrics struct {
	payments *prometheus.CounterVec
}

// NewMetrics registers the saga metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		payments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payment_payments_total",
			Help: "Payments that reached a status other than AUTHORIZING (AUTHORIZED, FAILED, VOIDED, CANCELED).",
		}, []string{"status"}),
	}
	if err := reg.Register(m.payments); err != nil {
		return nil, fmt.Errorf("register saga metrics: %w", err)
	}
	return m, nil
}

// reached counts a payment that has just reached status s.
func (m *Metrics) reached(s payment.Status) {
	m.payments.WithLabelValues(string(s)).Inc()
}

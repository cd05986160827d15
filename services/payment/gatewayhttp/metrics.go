package gatewayhttp

import (
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"outboxsaga.dev/payment"
)

// metrics counts and times every HTTP call to the gateway (each attempt, not each Charge).
type metrics struct {
	calls   *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		calls: f.NewCounterVec(prometheus.CounterOpts{Name: "payment_gateway_calls_total",
			Help: "Gateway calls (each attempt) by operation and outcome (approved, declined, voided, mismatch, unauthorized, timeout, unavailable, rejected, canceled)."},
			[]string{"op", "outcome"}),
		latency: f.NewHistogramVec(prometheus.HistogramOpts{Name: "payment_gateway_call_duration_seconds",
			Help: "Duration of one gateway call (one attempt), by operation.", Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 10}},
			[]string{"op"}),
	}
}

func (m *metrics) observe(op string, res payment.ChargeResult, err error, took time.Duration) {
	m.latency.WithLabelValues(op).Observe(took.Seconds())
	m.calls.WithLabelValues(op, outcome(res, err)).Inc()
}

func outcome(res payment.ChargeResult, err error) string {
	switch {
	case err == nil:
		return strings.ToLower(string(res.Status))
	case errors.Is(err, payment.ErrGatewayMismatch):
		return "mismatch"
	case errors.Is(err, payment.ErrGatewayUnauthorized):
		return "unauthorized"
	case errors.Is(err, payment.ErrGatewayTimeout):
		return "timeout"
	case errors.Is(err, payment.ErrGatewayUnavailable):
		return "unavailable"
	case errors.Is(err, payment.ErrGatewayRejected):
		return "rejected"
	default:
		return "canceled"
	}
}

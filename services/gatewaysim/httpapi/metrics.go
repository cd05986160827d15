package httpapi

import (
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"outboxsaga.dev/gatewaysim"
)

type metrics struct {
	charges *prometheus.CounterVec
	voids   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		charges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatewaysim_charges_total",
			Help: "Charge requests by token and outcome (approved, declined, replayed, unavailable, invalid).",
		}, []string{"token", "outcome"}),
		voids: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatewaysim_voids_total",
			Help: "Void requests by outcome (voided, unchanged, placeholder).",
		}, []string{"outcome"}),
	}
	for _, c := range []prometheus.Collector{m.charges, m.voids} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register collector: %w", err)
		}
	}
	return m, nil
}

// observeCharge counts one charge request.
func (m *metrics) observeCharge(token string, res gatewaysim.ChargeResult, err error) {
	var outcome string
	switch {
	case errors.Is(err, gatewaysim.ErrUnavailable):
		outcome = "unavailable"
	case err != nil:
		outcome = "invalid"
	case res.Replayed:
		outcome = "replayed"
	default:
		outcome = strings.ToLower(string(res.Charge.Status))
	}
	m.charges.WithLabelValues(tokenLabel(token), outcome).Inc()
}

// tokenLabel keeps the label's cardinality bounded.
func tokenLabel(token string) string {
	switch token {
	case gatewaysim.TokenOK, gatewaysim.TokenDeclined, gatewaysim.TokenFlaky, gatewaysim.TokenTimeout:
		return token
	default:
		return "other"
	}
}

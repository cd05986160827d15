// Package httpapi serves the shipping service's own routes over HTTP (chi): reading an order's
// delivery and, for operators, moving it one step at once. Health, readiness, metrics, the
// recover policy and the dead-letter endpoints are the shared runtime's (messaging/service).
package httpapi

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/customer"
	"outboxsaga.dev/messaging/fault"
	msghttp "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/shipping"
)

// Deliveries reads deliveries; *postgres.Deliveries implements it.
type Deliveries interface {
	Get(ctx context.Context, orderID string) (shipping.Delivery, error)
	// CustomerOf returns the customer of an order, "" when the service has not heard of it.
	CustomerOf(ctx context.Context, orderID string) (string, error)
}

// Carrier moves a delivery one step with its event; *app.App implements it.
type Carrier interface {
	Advance(ctx context.Context, orderID string) (shipping.Delivery, error)
}

// Config is what the routes are built from.
type Config struct {
	Deliveries Deliveries
	Carrier    Carrier
	// AdminToken guards POST /deliveries/{orderId}/advance and lets operators read any delivery.
	AdminToken string
	// Customers checks the customer tokens of GET /deliveries/{orderId}; nil admits operators only.
	Customers *customer.Verifier
	Log       zerolog.Logger
}

// Routes adds the shipping service's routes to r: GET /deliveries/{orderId} and, behind the
// admin token, POST /deliveries/{orderId}/advance. Both answer the delivery as
// {"orderId","deliveryId","status","items","updatedAt"}; an order without a delivery is a 404,
// advancing a DELIVERED one a 409 (code already_delivered). The advance takes no body (one that
// is sent is not read). GET takes a customer token or the operator token: a customer reads the
// deliveries of its own orders only, and another customer's answers 404, as a missing one does.
func Routes(r chi.Router, cfg Config) {
	get := func(r *http.Request) (shipping.Delivery, error) {
		orderID := chi.URLParam(r, "orderId")
		d, err := cfg.Deliveries.Get(r.Context(), orderID)
		if err != nil {
			return d, err
		}
		if c, _ := customer.FromContext(r.Context()); !c.Operator {
			owner, err := cfg.Deliveries.CustomerOf(r.Context(), orderID)
			if err != nil {
				return shipping.Delivery{}, err
			}
			if !c.Owns(owner) {
				return shipping.Delivery{}, fault.Errorf(fault.NotFound, "order %.40q has no delivery", orderID)
			}
		}
		return d, nil
	}
	advance := func(r *http.Request) (shipping.Delivery, error) {
		d, err := cfg.Carrier.Advance(r.Context(), chi.URLParam(r, "orderId"))
		if err == nil {
			cfg.Log.Info().Str("orderId", d.OrderID).Str("status", string(d.Status)).Msg("delivery advanced by an operator")
		}
		return d, err
	}
	r.With(customer.RequireOrOperator(cfg.Customers, cfg.AdminToken, cfg.Log)).Get("/deliveries/{orderId}", answer(get, cfg.Log))
	r.With(msghttp.RequireAdmin(cfg.AdminToken, cfg.Log)).Post("/deliveries/{orderId}/advance", answer(advance, cfg.Log))
}

// answer serves what do returns: the delivery (200) or the error's status.
func answer(do func(r *http.Request) (shipping.Delivery, error), log zerolog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d, err := do(r)
		if err != nil {
			msghttp.WriteError(w, r, log, err)
			return
		}
		msghttp.WriteJSON(w, http.StatusOK, d)
	}
}

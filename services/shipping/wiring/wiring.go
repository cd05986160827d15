// Package wiring wires the shipping service: the shared service runtime (messaging/service) plus
// what is the shipping service's own: its repository, saga step and carrier simulator, and routes.
// Run is the whole service; a test starts it with a Config and a listener of its own and stops
// it by canceling the context.
package wiring

import (
	"context"
	"net"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/customer"
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/shipping/app"
	"outboxsaga.dev/shipping/httpapi"
	"outboxsaga.dev/shipping/postgres"
	"outboxsaga.dev/shipping/saga"
	"outboxsaga.dev/stack"
)

// Service names the service in dead letters, the Kafka client id, the logs and its settings
// (SHIPPING_*); its row of the stack's table (outboxsaga.dev/stack) holds its port.
const Service = "shipping"

// The adapters implement what the saga and the HTTP routes need of them.
var (
	_ app.Deliveries     = (*postgres.Deliveries)(nil)
	_ httpapi.Deliveries = (*postgres.Deliveries)(nil)
	_ httpapi.Carrier    = (*app.App)(nil)
)

// Config is the service's configuration: the settings every service has and the shipping
// service's own, read from SHIPPING_* variables by LoadConfig.
type Config struct {
	service.Config
	// AdvanceAfter is how long a delivery stays in a status before the carrier moves it on
	// (SHIPPING_ADVANCE_AFTER); 0 moves it at the carrier's next look, about 10 ms later.
	AdvanceAfter time.Duration `split_words:"true" default:"2s"`
	// CustomerTokenPublicKey verifies customer tokens (messaging/customer) on GET /deliveries/{orderId}:
	// SHIPPING_CUSTOMER_TOKEN_PUBLIC_KEY or CUSTOMER_TOKEN_PUBLIC_KEY, standard base64 of the PKIX
	// DER of the stack's Ed25519 public key. Empty: only operators may read deliveries.
	CustomerTokenPublicKey string `envconfig:"CUSTOMER_TOKEN_PUBLIC_KEY"`
}

// LoadConfig reads the configuration from the environment.
func LoadConfig() (Config, error) { return service.Load[Config](Service, stack.Service(Service).Port) }

// Run runs the service on ln until ctx is canceled, then shuts down and returns nil. It returns
// an error when the service cannot start (database, migrations) or when one of its parts fails.
func Run(ctx context.Context, cfg Config, ln net.Listener, log zerolog.Logger) error {
	return service.Run(ctx, Service, cfg.Config, ln, log, postgres.Migrations, func(svc *service.Service) (service.Mount, error) {
		customers, err := customer.Open(cfg.CustomerTokenPublicKey, svc.Log)
		if err != nil {
			return nil, err
		}
		deliveries := postgres.NewDeliveries(svc.DB)
		a := app.New(svc.DB, deliveries, svc.Outbox, app.NewMetrics(svc.Registry), svc.Log, cfg.AdvanceAfter)
		svc.Consume(saga.Topics, saga.New(svc.DB, svc.Outbox, a).Router())
		svc.Part("carrier", a.Carry)
		return func(r chi.Router) {
			httpapi.Routes(r, httpapi.Config{Deliveries: deliveries, Carrier: a, AdminToken: cfg.AdminToken, Customers: customers, Log: svc.Log})
		}, nil
	})
}

// Package wiring wires the payment service: the shared service runtime (messaging/service) plus
// what is the payment service's own: its repository, its gateway client, its use cases (app),
// and the saga steps and routes that call them. Run is the whole service; a test starts it with
// a Config and a listener of its own and stops it by canceling the context.
package wiring

import (
	"cmp"
	"context"
	"errors"
	"net"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/customer"
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/payment"
	"outboxsaga.dev/payment/app"
	"outboxsaga.dev/payment/gatewayhttp"
	"outboxsaga.dev/payment/httpapi"
	"outboxsaga.dev/payment/postgres"
	"outboxsaga.dev/payment/saga"
	"outboxsaga.dev/stack"
)

// Service names the service in dead letters, the Kafka client id, the logs and its settings
// (PAYMENT_*); its row of the stack's table (outboxsaga.dev/stack) holds its port.
const Service = "payment"

// The adapters implement what the saga and the HTTP routes need of them.
var (
	_ app.Payments     = (*postgres.Payments)(nil)
	_ saga.Payer       = (*app.App)(nil)
	_ httpapi.Payments = (*app.App)(nil)
	_ payment.Gateway  = (*gatewayhttp.Client)(nil)
)

// Config is the service's configuration: the settings every service has and the payment
// service's own, read from PAYMENT_* variables by LoadConfig.
type Config struct {
	service.Config
	// GatewayURL is the card gateway (default: the simulator on the native stack).
	GatewayURL string `split_words:"true"`
	// GatewayTimeout bounds one gateway call.
	GatewayTimeout time.Duration `split_words:"true" default:"2s"`
	// GatewayAttempts is how many calls one charge or void makes on transient failures.
	GatewayAttempts int `split_words:"true" default:"4"`
	// CustomerTokenPublicKey verifies customer tokens (messaging/customer) on GET /payments/{orderId}:
	// PAYMENT_CUSTOMER_TOKEN_PUBLIC_KEY or CUSTOMER_TOKEN_PUBLIC_KEY, standard base64 of the PKIX DER
	// of the stack's Ed25519 public key. Empty: only operators may read payments.
	CustomerTokenPublicKey string `envconfig:"CUSTOMER_TOKEN_PUBLIC_KEY"`
	// GatewaySecret (PAYMENT_GATEWAY_SECRET) is the merchant's secret the gateway authenticates
	// every call with. Empty: the gateway answers 401 to every call, so every charge waits
	// (retried as an outage, logged as an error) until the service is given it.
	GatewaySecret string `split_words:"true"`
}

// LoadConfig reads the configuration from the environment.
func LoadConfig() (Config, error) {
	cfg, err := service.Load[Config](Service, stack.Service(Service).Port)
	cfg.GatewayURL = cmp.Or(cfg.GatewayURL, stack.Service("gatewaysim").URL())
	if err == nil && (cfg.GatewayAttempts < 1 || cfg.GatewayTimeout <= 0) {
		err = errors.New("read config: PAYMENT_GATEWAY_ATTEMPTS and PAYMENT_GATEWAY_TIMEOUT must be positive")
	}
	return cfg, err
}

// Run runs the service on ln until ctx is canceled, then shuts down and returns nil. It returns an
// error when the service cannot start (database, migrations) or when one of its parts fails.
func Run(ctx context.Context, cfg Config, ln net.Listener, log zerolog.Logger) error {
	return service.Run(ctx, Service, cfg.Config, ln, log, postgres.Migrations, func(svc *service.Service) (service.Mount, error) {
		customers, err := customer.Open(cfg.CustomerTokenPublicKey, svc.Log)
		if err != nil {
			return nil, err
		}
		if cfg.GatewaySecret == "" {
			svc.Log.Error().Msg("PAYMENT_GATEWAY_SECRET is not set: the gateway will refuse every charge (401) and payments wait until it is")
		}
		gateway, err := gatewayhttp.New(gatewayhttp.Config{URL: cfg.GatewayURL, Timeout: cfg.GatewayTimeout, Attempts: cfg.GatewayAttempts,
			Secret: cfg.GatewaySecret, Transport: svc.Tracer.Transport("gateway", nil)}, svc.Registry)
		if err != nil {
			return nil, err
		}
		payments := postgres.NewPayments(svc.DB)
		alerts := app.Alerts{DeadLetters: svc.DeadLetters, Service: Service}
		a := app.New(svc.DB, payments, svc.Outbox, alerts, gateway, app.NewMetrics(svc.Registry))
		svc.Consume(saga.Topics, saga.New(svc.DB, a).Router())
		return func(r chi.Router) {
			httpapi.Routes(r, httpapi.Config{Payments: a, Customers: customers, AdminToken: cfg.AdminToken, Log: svc.Log})
		}, nil
	})
}

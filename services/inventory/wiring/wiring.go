// Package wiring wires the inventory service: the shared service runtime (messaging/service) plus
// what is the inventory service's own: its repository, saga steps and routes. Run is the whole
// service; a test starts it with a Config and a listener of its own and stops it by canceling
// the context.
package wiring

import (
	"context"
	"net"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"outboxsaga.dev/inventory/app"
	"outboxsaga.dev/inventory/httpapi"
	"outboxsaga.dev/inventory/postgres"
	"outboxsaga.dev/inventory/saga"
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/stack"
)

// Service names the service in dead letters, the Kafka client id, the logs and its settings
// (INVENTORY_*); its row of the stack's table (outboxsaga.dev/stack) holds its port.
const Service = "inventory"

// The repositories implement what the saga and the HTTP routes need of them.
var (
	_ app.Reservations   = (*postgres.Reservations)(nil)
	_ httpapi.StockStore = (*postgres.StockLevels)(nil)
)

// Config is the service's configuration, read from INVENTORY_* variables by LoadConfig: the
// settings every service has (the inventory service has none of its own).
type Config struct {
	service.Config
}

// LoadConfig reads the configuration from the environment.
func LoadConfig() (Config, error) { return service.Load[Config](Service, stack.Service(Service).Port) }

// Run runs the service on ln until ctx is canceled, then shuts down and returns nil. It returns
// an error when the service cannot start (configuration, database, migrations) or when one of
// its parts fails.
func Run(ctx context.Context, cfg Config, ln net.Listener, log zerolog.Logger) error {
	return service.Run(ctx, Service, cfg.Config, ln, log, postgres.Migrations, func(svc *service.Service) (service.Mount, error) {
		stock, reservations := postgres.NewStockLevels(svc.DB, svc.Outbox), postgres.NewReservations(svc.DB)
		svc.Consume(saga.Topics, saga.New(svc.DB, svc.Outbox, app.New(reservations, app.NewMetrics(svc.Registry))).Router())
		return func(r chi.Router) {
			httpapi.Routes(r, httpapi.Config{Stock: stock, AdminToken: cfg.AdminToken, Log: svc.Log})
		}, nil
	})
}

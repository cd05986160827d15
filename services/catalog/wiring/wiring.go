// Package wiring wires the catalog service: the shared service runtime (messaging/service) plus
// what is the catalog's own: its repository, steps and routes. Run is the whole service; a test
// starts it with a Config and a listener of its own and stops it by canceling the context.
package wiring

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"outboxsaga.dev/catalog"
	"outboxsaga.dev/catalog/app"
	"outboxsaga.dev/catalog/httpapi"
	"outboxsaga.dev/catalog/postgres"
	"outboxsaga.dev/catalog/saga"
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/stack"
)

// Service names the service in dead letters, the Kafka client id, the logs and its settings
// (CATALOG_*); its row of the stack's table (outboxsaga.dev/stack) holds its port.
const Service = "catalog"

// The repository implements what the steps and the HTTP routes need of it.
var (
	_ app.Store      = (*postgres.Catalog)(nil)
	_ httpapi.Reader = (*postgres.Catalog)(nil)
)

// Config is the service's configuration: the settings every service has and the catalog's own,
// read from CATALOG_* variables by LoadConfig.
type Config struct {
	service.Config
	// RankingTZ is the zone whose calendar days the daily ranking counts in (CATALOG_RANKING_TZ or
	// RANKING_TZ), an IANA name.
	RankingTZ string `envconfig:"RANKING_TZ" default:"Asia/Seoul"`
}

// LoadConfig reads the configuration from the environment.
func LoadConfig() (Config, error) { return service.Load[Config](Service, stack.Service(Service).Port) }

// Zone returns the ranking's zone that cfg names.
func (cfg Config) Zone() (*time.Location, error) {
	name := cfg.RankingTZ
	if name == "" {
		name = catalog.DefaultRankingTZ
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("RANKING_TZ %q: %w", name, err)
	}
	return loc, nil
}

// Run runs the service on ln until ctx is canceled, then shuts down and returns nil. It returns
// an error when the service cannot start (configuration, database, migrations) or when one of
// its parts fails.
func Run(ctx context.Context, cfg Config, ln net.Listener, log zerolog.Logger) error {
	zone, err := cfg.Zone()
	if err != nil {
		return err
	}
	return service.Run(ctx, Service, cfg.Config, ln, log, postgres.Migrations, func(svc *service.Service) (service.Mount, error) {
		store := postgres.NewCatalog(svc.DB)
		svc.Consume(saga.Topics, saga.New(svc.DB, app.New(store, zone)).Router())
		return func(r chi.Router) {
			httpapi.Routes(r, httpapi.Config{Catalog: store, Zone: zone, Log: svc.Log})
		}, nil
	})
}

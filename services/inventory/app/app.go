// Package app wires the inventory service together: configuration, database and migrations,
// the saga consumer and the HTTP API. Run is the whole service; tests can start it with a Config
// of their own and stop it by canceling the context.
package app

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/rs/zerolog"

	"outboxsaga.dev/inventory/httpapi"
	"outboxsaga.dev/inventory/postgres"
	"outboxsaga.dev/inventory/saga"
	"outboxsaga.dev/messaging/debezium"
	shared "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/messaging/kafka"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/schemas"
)

// Service names the service in dead letters, the Kafka client id and logs.
const Service = "inventory"

// Topic is the topic the saga consumes.
const Topic = "order-events"

const (
	// maxOpenConns caps the pool: one connection per claimed partition and a few for HTTP is
	// plenty, and the database is shared with other services' connections.
	maxOpenConns = 20
	// dbWait is how long Run waits for the database to answer at start (a container stack may
	// start the service first).
	dbWait = 30 * time.Second
)

// Config is the service's configuration, read from INVENTORY_* variables (see LoadConfig).
// Defaults match the native stack.
type Config struct {
	HTTPAddr      string   `split_words:"true" default:"127.0.0.1:8081"`
	DatabaseURL   string   `split_words:"true" default:"postgres://inventory_svc:inventory_svc@127.0.0.1:5432/inventory_db?sslmode=disable"`
	KafkaBrokers  []string `split_words:"true" default:"127.0.0.1:9092"`
	ConsumerGroup string   `split_words:"true" default:"inventory-service"`
	// AdminToken is INVENTORY_ADMIN_TOKEN, or ADMIN_TOKEN when that is unset. Empty leaves the
	// operator endpoints open (a warning is logged at start).
	AdminToken string `envconfig:"ADMIN_TOKEN"`
	LogLevel   string `split_words:"true" default:"info"`
	// ConnectURL is Kafka Connect's REST API, where the service watches the connector that
	// streams its outbox (/readyz, /metrics). INVENTORY_CONNECT_URL, or CONNECT_URL; empty: not watched.
	ConnectURL string `envconfig:"CONNECT_URL" default:"http://127.0.0.1:8083"`
	// Connector and ReplicationSlot name the service's Debezium connector and its slot.
	Connector       string `default:"inventory-outbox"`
	ReplicationSlot string `split_words:"true" default:"inventory_outbox"`
	// HandlerMaxAttempts is how often a saga step is tried before its message is dead-lettered.
	HandlerMaxAttempts int `split_words:"true" default:"5"`
}

// LoadConfig reads the configuration from the environment.
func LoadConfig() (Config, error) {
	var cfg Config
	if err := envconfig.Process("inventory", &cfg); err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	if cfg.HandlerMaxAttempts < 1 {
		return Config{}, fmt.Errorf("read config: INVENTORY_HANDLER_MAX_ATTEMPTS must be ≥ 1, not %d", cfg.HandlerMaxAttempts)
	}
	return cfg, nil
}

// Run runs the service until ctx is canceled, then shuts down gracefully and returns nil. It
// returns an error if the service cannot start (database, migrations, listen address) or if the
// HTTP server or consumer fails.
func Run(ctx context.Context, cfg Config, log zerolog.Logger) error {
	db, err := msgpg.Open(ctx, cfg.DatabaseURL, maxOpenConns, dbWait)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := postgres.Migrate(ctx, db); err != nil {
		return err
	}

	reg := shared.NewRegistry(db, Service)
	validator, err := schemas.New()
	if err != nil {
		return fmt.Errorf("load event schemas: %w", err)
	}
	outbox := msgpg.NewOutbox(validator)
	router, err := saga.NewRouter(db, outbox, log, reg)
	if err != nil {
		return err
	}
	deadLetters := msgpg.NewDeadLetters(db, outbox)
	consume, replay := kafka.Handlers(router.Dispatch, kafka.HandlerConfig{
		Service: Service, Validator: validator, DeadLetters: deadLetters,
		MaxAttempts: cfg.HandlerMaxAttempts, Unavailable: msgpg.IsUnavailable, Log: log, Registry: reg,
	})
	consumer := &kafka.Consumer{
		Brokers: cfg.KafkaBrokers,
		Group:   cfg.ConsumerGroup,
		Topics:  []string{Topic},
		Service: Service,
		Handler: consume,
		Logger:  log,
	}
	checks := []shared.Check{
		{Name: "postgres", Probe: db.PingContext},
		{Name: "kafka", Probe: func(context.Context) error { return consumer.Ready() }},
	}
	parts := []shared.Part{{Name: "consumer", Run: consumer.Run}}
	if cfg.ConnectURL != "" {
		cdc := &debezium.Monitor{Connect: debezium.NewClient(cfg.ConnectURL), DB: db, Connector: cfg.Connector, Slot: cfg.ReplicationSlot, Log: log}
		if err := cdc.Register(reg); err != nil {
			return err
		}
		checks = append(checks, shared.Check{Name: "cdc", Probe: cdc.Check})
		parts = append(parts, shared.Part{Name: "cdc monitor", Run: cdc.Run})
	}
	api := httpapi.NewRouter(postgres.NewStockStore(db), httpapi.Config{
		AdminToken: cfg.AdminToken,
		Log:        log,
		Gatherer:   reg,
		Checks:     checks,
	})
	// Operator endpoints: GET /dead-letters, POST /dead-letters/{id}/replay (behind ADMIN_TOKEN).
	shared.MountDeadLetters(api, deadLetters, replay, cfg.AdminToken, log)
	shared.WarnIfOpen(cfg.AdminToken, log)

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	log.Info().Str("addr", ln.Addr().String()).Strs("brokers", cfg.KafkaBrokers).Str("group", cfg.ConsumerGroup).
		Msg("inventory service started")
	err = shared.Serve(ctx, shared.NewServer(api), ln, parts...)
	log.Info().Err(err).Msg("inventory service stopped")
	return err
}

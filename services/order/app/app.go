// Package app wires the order service: configuration, database and migrations, the HTTP API, the
// saga consumer, the deadline sweeper and the status listener. Run is the whole service; a test
// starts it with a Config of its own and stops it by canceling the context.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/debezium"
	msghttp "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/messaging/kafka"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/order/httpapi"
	"outboxsaga.dev/order/postgres"
	"outboxsaga.dev/order/saga"
	"outboxsaga.dev/schemas"
)

// Service names the service in dead letters, the Kafka client id and the logs.
const Service = "order"

const (
	// dbWait is how long Run waits for the database at start (a container stack may start the
	// service before Postgres answers).
	dbWait = 30 * time.Second
)

// Config is the service's configuration, read from ORDER_* variables by LoadConfig. The
// defaults match the native stack.
type Config struct {
	HTTPAddr      string   `split_words:"true" default:"127.0.0.1:8080"`
	DatabaseURL   string   `split_words:"true" default:"postgres://order_svc:order_svc@127.0.0.1:5432/order_db?sslmode=disable"`
	KafkaBrokers  []string `split_words:"true" default:"127.0.0.1:9092"`
	ConsumerGroup string   `split_words:"true" default:"order-service"`
	// AdminToken is ORDER_ADMIN_TOKEN, or ADMIN_TOKEN when that is unset. Empty leaves the
	// operator endpoints open (a warning is logged at start).
	AdminToken string `envconfig:"ADMIN_TOKEN"`
	LogLevel   string `split_words:"true" default:"info"`
	// ConnectURL is Kafka Connect's REST API, where the service watches the connector that
	// streams its outbox (/readyz, /metrics). ORDER_CONNECT_URL, or CONNECT_URL; empty: not watched.
	ConnectURL string `envconfig:"CONNECT_URL" default:"http://127.0.0.1:8083"`
	// Connector and ReplicationSlot name the service's Debezium connector and its slot.
	Connector       string `default:"order-outbox"`
	ReplicationSlot string `split_words:"true" default:"order_outbox"`
	// HandlerMaxAttempts is how often a saga step is tried before its message is dead-lettered.
	HandlerMaxAttempts int `split_words:"true" default:"5"`
	// SagaDeadline is how long an order may stay PENDING before it is canceled with TIMEOUT.
	SagaDeadline time.Duration `split_words:"true" default:"30s"`
	// SweepInterval is how often the deadline sweeper looks for expired orders.
	SweepInterval time.Duration `split_words:"true" default:"1s"`
	// DBMaxOpenConns caps the pool: a connection per claimed partition, the sweeper, HTTP.
	DBMaxOpenConns int `envconfig:"DB_MAX_OPEN_CONNS" default:"20"`
}

// LoadConfig reads the configuration from the environment.
func LoadConfig() (Config, error) {
	var cfg Config
	if err := envconfig.Process("order", &cfg); err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	if cfg.HandlerMaxAttempts < 1 || cfg.SagaDeadline <= 0 || cfg.SweepInterval <= 0 || cfg.DBMaxOpenConns < 1 {
		return Config{}, errors.New("read config: ORDER_HANDLER_MAX_ATTEMPTS, ORDER_SAGA_DEADLINE, ORDER_SWEEP_INTERVAL and ORDER_DB_MAX_OPEN_CONNS must be positive")
	}
	return cfg, nil
}

// Run runs the service until ctx is canceled, then shuts down and returns nil. It returns an
// error when the service cannot start (database, migrations, listen address) or when one of its
// parts fails.
func Run(ctx context.Context, cfg Config, log zerolog.Logger) error {
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("log level %q: %w", cfg.LogLevel, err)
	}
	log = log.Level(level).With().Str("service", Service).Logger()

	db, err := msgpg.Open(ctx, cfg.DatabaseURL, cfg.DBMaxOpenConns, dbWait)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := postgres.Migrate(ctx, db); err != nil {
		return err
	}

	reg := msghttp.NewRegistry(db, Service)
	metrics, err := saga.NewMetrics(reg)
	if err != nil {
		return err
	}
	validator, err := schemas.New()
	if err != nil {
		return fmt.Errorf("load schemas: %w", err)
	}
	outbox := msgpg.NewOutbox(validator)
	orders := postgres.NewOrders(db, outbox)
	steps := saga.NewSteps(db, orders, metrics, log)
	deadLetters := msgpg.NewDeadLetters(db, outbox)
	consume, replay := kafka.Handlers(steps.Router().Dispatch, kafka.HandlerConfig{
		Service: Service, Validator: validator, DeadLetters: deadLetters,
		MaxAttempts: cfg.HandlerMaxAttempts, Unavailable: msgpg.IsUnavailable, Log: log, Registry: reg,
	})
	consumer := &kafka.Consumer{
		Brokers: cfg.KafkaBrokers,
		Group:   cfg.ConsumerGroup,
		Topics:  []string{saga.TopicInventory, saga.TopicPayment},
		Service: Service,
		Handler: consume,
		Logger:  log,
	}
	checks := []msghttp.Check{
		{Name: "postgres", Probe: db.PingContext},
		{Name: "kafka", Probe: func(context.Context) error { return consumer.Ready() }},
	}
	parts := []msghttp.Part{{Name: "consumer", Run: consumer.Run}}
	if cfg.ConnectURL != "" {
		cdc := &debezium.Monitor{Connect: debezium.NewClient(cfg.ConnectURL), DB: db, Connector: cfg.Connector, Slot: cfg.ReplicationSlot, Log: log}
		if err := cdc.Register(reg); err != nil {
			return err
		}
		checks = append(checks, msghttp.Check{Name: "cdc", Probe: cdc.Check})
		parts = append(parts, msghttp.Part{Name: "cdc monitor", Run: cdc.Run})
	}
	sweeper := saga.NewSweeper(db, orders, metrics, log, cfg.SweepInterval)
	listener, err := postgres.NewStatusListener(cfg.DatabaseURL, log)
	if err != nil {
		return fmt.Errorf("listen for order status changes: %w", err)
	}
	defer listener.Close()

	srv := msghttp.NewServer(nil)
	closing := make(chan struct{})
	srv.RegisterOnShutdown(func() { close(closing) })
	api, err := httpapi.NewRouter(httpapi.Config{
		DB: db, Orders: orders, Watcher: listener, Deadline: cfg.SagaDeadline,
		Log: log, Registry: reg, Closing: closing,
		Checks: checks,
	})
	if err != nil {
		return err
	}
	// Operator endpoints: GET /dead-letters, POST /dead-letters/{id}/replay (behind ADMIN_TOKEN).
	msghttp.MountDeadLetters(api, deadLetters, replay, cfg.AdminToken, log)
	msghttp.WarnIfOpen(cfg.AdminToken, log)
	srv.Handler = api

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	log.Info().Str("addr", ln.Addr().String()).Strs("brokers", cfg.KafkaBrokers).Str("group", cfg.ConsumerGroup).
		Dur("sagaDeadline", cfg.SagaDeadline).Msg("order service started")
	parts = append(parts,
		msghttp.Part{Name: "deadline sweeper", Run: sweeper.Run},
		msghttp.Part{Name: "status listener", Run: listener.Run},
	)
	err = msghttp.Serve(ctx, srv, ln, parts...)
	log.Info().Err(err).Msg("order service stopped")
	return err
}

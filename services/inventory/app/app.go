// Package app wires the inventory service together: configuration, database and migrations,
// the saga consumer and the HTTP API. Run is the whole service; tests can start it with a Config
// of their own and stop it by canceling the context.
package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	// Registers the "postgres" driver.
	_ "github.com/lib/pq"

	"outboxsaga.dev/inventory/httpapi"
	"outboxsaga.dev/inventory/postgres"
	"outboxsaga.dev/inventory/saga"
	"outboxsaga.dev/messaging"
	shared "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/messaging/kafka"
	messagingpg "outboxsaga.dev/messaging/postgres"
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
	// shutdownTimeout bounds how long in-flight HTTP requests get at shutdown.
	shutdownTimeout = 5 * time.Second
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
	db, err := openDB(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := postgres.Migrate(ctx, db); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(db, Service),
	)

	consumer, err := newConsumer(db, cfg, log, reg)
	if err != nil {
		return err
	}
	api := httpapi.NewRouter(postgres.NewStockStore(db), httpapi.Config{
		AdminToken: cfg.AdminToken,
		Log:        log,
		Gatherer:   reg,
		Checks: []shared.Check{
			{Name: "postgres", Probe: db.PingContext},
			{Name: "kafka", Probe: func(context.Context) error { return consumer.Ready() }},
		},
	})
	// Operator dead-letter endpoints (GET /dead-letters, POST /dead-letters/{id}/replay) go here
	// once messaging/httpapi.MountDeadLetters exists: mount it on api behind
	// shared.RequireAdmin(cfg.AdminToken, log), with messagingpg.NewDeadLetters(db) and the
	// replay chain of newConsumer (the consumer's chain without kafka.DeadLetter).
	shared.WarnIfOpen(cfg.AdminToken, log)

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
	}
	return serve(ctx, srv, ln, consumer, log)
}

// serve runs the HTTP server and the consumer until ctx is canceled or one of them fails, then
// stops both.
func serve(ctx context.Context, srv *http.Server, ln net.Listener, consumer *kafka.Consumer, log zerolog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	consumerDone := make(chan error, 1)
	go func() { consumerDone <- consumer.Run(ctx) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	log.Info().Str("addr", ln.Addr().String()).Strs("brokers", consumer.Brokers).Str("group", consumer.Group).Msg("inventory service started")

	var runErr error
	consumerStopped := false
	select {
	case <-ctx.Done():
	case err := <-serveDone:
		runErr = fmt.Errorf("http server: %w", err)
	case err := <-consumerDone:
		consumerStopped = true
		runErr = fmt.Errorf("consumer stopped: %w", err)
	}
	cancel()

	log.Info().Msg("shutting down")
	shutdownCtx, stop := context.WithTimeout(context.Background(), shutdownTimeout)
	defer stop()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("http shutdown: %w", err))
	}
	if !consumerStopped {
		if err := <-consumerDone; err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("consumer: %w", err))
		}
	}
	return runErr
}

// newConsumer builds the saga consumer of order-events. Its chain, outermost first: log,
// metrics, dead-letter, retry, recover, decode (schema-validated), then the saga router.
func newConsumer(db *sql.DB, cfg Config, log zerolog.Logger, reg *prometheus.Registry) (*kafka.Consumer, error) {
	router, err := saga.NewRouter(db, log, reg)
	if err != nil {
		return nil, err
	}
	validator, err := schemas.New()
	if err != nil {
		return nil, fmt.Errorf("load event schemas: %w", err)
	}
	handler := messaging.Chain(router.Dispatch,
		kafka.Log(log),
		kafka.Metrics(reg),
		kafka.DeadLetter(messagingpg.NewDeadLetters(db), Service),
		kafka.Retry(cfg.HandlerMaxAttempts, 200*time.Millisecond, 5*time.Second),
		kafka.Recover(),
		kafka.Decode(validator),
	)
	return &kafka.Consumer{
		Brokers: cfg.KafkaBrokers,
		Group:   cfg.ConsumerGroup,
		Topics:  []string{Topic},
		Service: Service,
		Handler: handler,
		Logger:  log,
	}, nil
}

// openDB opens the pool and waits up to dbWait for the database to answer.
func openDB(ctx context.Context, url string) (*sql.DB, error) {
	db, err := sql.Open("postgres", url)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxOpenConns / 2)
	ctx, cancel := context.WithTimeout(ctx, dbWait)
	defer cancel()
	for {
		err = db.PingContext(ctx)
		if err == nil {
			return db, nil
		}
		select {
		case <-ctx.Done():
			db.Close()
			return nil, fmt.Errorf("database does not answer: %w", err)
		case <-time.After(time.Second):
		}
	}
}

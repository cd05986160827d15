// Package app wires the order service: configuration, database and migrations, the HTTP API, the
// saga consumer, the deadline sweeper and the status listener. Run is the whole service; a test
// starts it with a Config of its own and stops it by canceling the context.
package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	// Registers the "postgres" driver.
	_ "github.com/lib/pq"

	"outboxsaga.dev/messaging"
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
	// shutdownTimeout bounds how long in-flight HTTP requests get at shutdown.
	shutdownTimeout = 5 * time.Second
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
	// HandlerMaxAttempts is how often a saga step is tried before its message is dead-lettered.
	HandlerMaxAttempts int `split_words:"true" default:"5"`
	// SagaDeadline is how long an order may stay PENDING before it is canceled with TIMEOUT.
	SagaDeadline time.Duration `split_words:"true" default:"30s"`
	// SweepInterval is how often the deadline sweeper looks for expired orders.
	SweepInterval time.Duration `split_words:"true" default:"1s"`
	// DBMaxOpenConns caps the pool: a connection per claimed partition, the sweeper, HTTP.
	DBMaxOpenConns int `envconfig:"DB_MAX_OPEN_CONNS" default:"20"`
	DBMaxIdleConns int `envconfig:"DB_MAX_IDLE_CONNS" default:"10"`
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

	db, err := openDB(ctx, cfg)
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
	metrics, err := saga.NewMetrics(reg)
	if err != nil {
		return err
	}
	orders := postgres.NewOrders(db)
	steps := saga.NewSteps(db, orders, metrics, log)
	consume, replay, err := handlers(db, steps, cfg, log, reg)
	if err != nil {
		return err
	}
	consumer := &kafka.Consumer{
		Brokers: cfg.KafkaBrokers,
		Group:   cfg.ConsumerGroup,
		Topics:  []string{saga.TopicInventory, saga.TopicPayment},
		Service: Service,
		Handler: consume,
		Logger:  log,
	}
	sweeper := saga.NewSweeper(db, orders, metrics, log, cfg.SweepInterval)
	listener, err := postgres.NewStatusListener(cfg.DatabaseURL, log)
	if err != nil {
		return fmt.Errorf("listen for order status changes: %w", err)
	}
	defer listener.Close()

	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second, // status streams lift it for themselves
		IdleTimeout:       time.Minute,
	}
	closing := make(chan struct{})
	srv.RegisterOnShutdown(func() { close(closing) })
	api, err := httpapi.NewRouter(httpapi.Config{
		DB: db, Orders: orders, Watcher: listener, Deadline: cfg.SagaDeadline,
		Log: log, Registry: reg, Closing: closing,
		Checks: []msghttp.Check{
			{Name: "postgres", Probe: db.PingContext},
			{Name: "kafka", Probe: func(context.Context) error { return consumer.Ready() }},
		},
	})
	if err != nil {
		return err
	}
	// Operator endpoints: GET /dead-letters, POST /dead-letters/{id}/replay (behind ADMIN_TOKEN).
	msghttp.MountDeadLetters(api, msgpg.NewDeadLetters(db), replay, cfg.AdminToken, log)
	msghttp.WarnIfOpen(cfg.AdminToken, log)
	srv.Handler = api

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	log.Info().Str("addr", ln.Addr().String()).Strs("brokers", cfg.KafkaBrokers).Str("group", cfg.ConsumerGroup).
		Dur("sagaDeadline", cfg.SagaDeadline).Msg("order service started")
	err = serve(ctx, srv, ln,
		part{"consumer", consumer.Run},
		part{"deadline sweeper", sweeper.Run},
		part{"status listener", listener.Run},
	)
	log.Info().Err(err).Msg("order service stopped")
	return err
}

// handlers returns the consumer's handler chain and the one dead-letter replays run: the same
// without kafka.DeadLetter and kafka.Retry, so a replay that fails reports its error at once
// instead of being dead-lettered again.
func handlers(db *sql.DB, steps *saga.Steps, cfg Config, log zerolog.Logger, reg prometheus.Registerer) (consume, replay messaging.Handler, err error) {
	validator, err := schemas.New()
	if err != nil {
		return nil, nil, fmt.Errorf("load schemas: %w", err)
	}
	dispatch := steps.Router().Dispatch
	consume = messaging.Chain(dispatch,
		kafka.Log(log),
		kafka.Metrics(reg),
		kafka.DeadLetter(msgpg.NewDeadLetters(db), Service),
		kafka.Retry(cfg.HandlerMaxAttempts, 200*time.Millisecond, 5*time.Second),
		kafka.Recover(),
		kafka.Decode(validator),
	)
	replay = messaging.Chain(dispatch,
		kafka.Log(log),
		kafka.Metrics(reg),
		kafka.Recover(),
		kafka.Decode(validator),
	)
	return consume, replay, nil
}

// part is one long-running part of the service besides the HTTP server. Its run returns when
// ctx is done; returning earlier means it failed.
type part struct {
	name string
	run  func(ctx context.Context) error
}

// serve runs the HTTP server and parts until ctx is canceled or one of them stops, then stops
// them all and returns their errors.
func serve(ctx context.Context, srv *http.Server, ln net.Listener, parts ...part) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(parts)+2)
	var wg sync.WaitGroup
	for _, p := range parts {
		wg.Go(func() {
			defer cancel() // one part stopping stops the service
			if err := p.run(ctx); err != nil {
				errs <- fmt.Errorf("%s: %w", p.name, err)
			} else if ctx.Err() == nil {
				errs <- fmt.Errorf("%s stopped unexpectedly", p.name)
			}
		})
	}
	wg.Go(func() {
		defer cancel()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("http server: %w", err)
		}
	})

	<-ctx.Done()
	shutdownCtx, stop := context.WithTimeout(context.Background(), shutdownTimeout)
	defer stop()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		errs <- fmt.Errorf("http shutdown: %w", err)
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// openDB opens the service database and waits up to dbWait for it to answer.
func openDB(ctx context.Context, cfg Config) (*sql.DB, error) {
	db, err := sql.Open("postgres", cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(cfg.DBMaxOpenConns)
	db.SetMaxIdleConns(cfg.DBMaxIdleConns)
	waitCtx, cancel := context.WithTimeout(ctx, dbWait)
	defer cancel()
	for {
		err := db.PingContext(waitCtx)
		if err == nil {
			return db, nil
		}
		select {
		case <-waitCtx.Done():
			db.Close()
			return nil, fmt.Errorf("database does not answer: %w", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

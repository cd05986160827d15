// Package app wires the payment service: configuration, database and migrations, the gateway
// client, the saga consumer and the HTTP API. Run is the whole service; a test starts it with a
// Config of its own and stops it by canceling the context.
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

	"outboxsaga.dev/messaging"
	msghttp "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/messaging/kafka"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/payment/gatewayhttp"
	"outboxsaga.dev/payment/httpapi"
	"outboxsaga.dev/payment/postgres"
	"outboxsaga.dev/payment/saga"
	"outboxsaga.dev/schemas"
)

// Service names the service in dead letters, the Kafka client id and the logs.
const Service = "payment"

const (
	// dbWait is how long Run waits for the database at start (a container stack may start the
	// service before Postgres answers).
	dbWait = 30 * time.Second
	// maxOpenConns caps the pool: a connection per claimed partition plus a few for HTTP.
	maxOpenConns = 20
	// shutdownTimeout bounds how long in-flight HTTP requests get at shutdown.
	shutdownTimeout = 5 * time.Second
)

// Config is the service's configuration, read from PAYMENT_* variables by LoadConfig. The
// defaults match the native stack.
type Config struct {
	HTTPAddr      string   `split_words:"true" default:"127.0.0.1:8082"`
	DatabaseURL   string   `split_words:"true" default:"postgres://payment_svc:payment_svc@127.0.0.1:5432/payment_db?sslmode=disable"`
	KafkaBrokers  []string `split_words:"true" default:"127.0.0.1:9092"`
	ConsumerGroup string   `split_words:"true" default:"payment-service"`
	// AdminToken is PAYMENT_ADMIN_TOKEN, or ADMIN_TOKEN when that is unset. Empty leaves the
	// operator endpoints open (a warning is logged at start).
	AdminToken string `envconfig:"ADMIN_TOKEN"`
	LogLevel   string `split_words:"true" default:"info"`
	// HandlerMaxAttempts is how often a saga step is tried before its message is dead-lettered.
	HandlerMaxAttempts int `split_words:"true" default:"5"`
	// GatewayURL is the card gateway (the simulator on the native stack).
	GatewayURL string `split_words:"true" default:"http://127.0.0.1:8089"`
	// GatewayTimeout bounds one gateway call.
	GatewayTimeout time.Duration `split_words:"true" default:"2s"`
	// GatewayAttempts is how many calls one charge or void makes on transient failures.
	GatewayAttempts int `split_words:"true" default:"4"`
}

// LoadConfig reads the configuration from the environment.
func LoadConfig() (Config, error) {
	var cfg Config
	if err := envconfig.Process("payment", &cfg); err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	if cfg.HandlerMaxAttempts < 1 || cfg.GatewayAttempts < 1 || cfg.GatewayTimeout <= 0 {
		return Config{}, errors.New("read config: PAYMENT_HANDLER_MAX_ATTEMPTS, PAYMENT_GATEWAY_ATTEMPTS and PAYMENT_GATEWAY_TIMEOUT must be positive")
	}
	return cfg, nil
}

// Run runs the service until ctx is canceled, then shuts down and returns nil. It returns an
// error when the service cannot start (database, migrations, listen address) or when the HTTP
// server or the consumer fails.
func Run(ctx context.Context, cfg Config, log zerolog.Logger) error {
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("log level %q: %w", cfg.LogLevel, err)
	}
	log = log.Level(level).With().Str("service", Service).Logger()

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
	consume, replay, err := handlers(db, cfg, log, reg)
	if err != nil {
		return err
	}
	consumer := &kafka.Consumer{
		Brokers: cfg.KafkaBrokers,
		Group:   cfg.ConsumerGroup,
		Topics:  []string{saga.TopicInventory, saga.TopicOrder},
		Service: Service,
		Handler: consume,
		Logger:  log,
	}

	api := httpapi.NewRouter(postgres.NewPayments(db), log, reg,
		msghttp.Check{Name: "postgres", Probe: db.PingContext},
		msghttp.Check{Name: "kafka", Probe: func(context.Context) error { return consumer.Ready() }},
	)
	// Operator endpoints: GET /dead-letters, POST /dead-letters/{id}/replay (behind ADMIN_TOKEN).
	msghttp.MountDeadLetters(api, msgpg.NewDeadLetters(db), replay, cfg.AdminToken, log)
	msghttp.WarnIfOpen(cfg.AdminToken, log)

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

// handlers builds the gateway client and the saga steps, and returns two chains around their
// Router: consume, the consumer's (retries, then dead letters), and replay, the one dead-letter
// replays run (no DeadLetter, so that a failing replay reports its error instead of being
// dead-lettered again).
func handlers(db *sql.DB, cfg Config, log zerolog.Logger, reg *prometheus.Registry) (consume, replay messaging.Handler, err error) {
	gateway, err := gatewayhttp.New(gatewayhttp.Config{
		URL:      cfg.GatewayURL,
		Timeout:  cfg.GatewayTimeout,
		Attempts: cfg.GatewayAttempts,
	}, reg)
	if err != nil {
		return nil, nil, err
	}
	steps, err := saga.New(db, gateway, log, reg)
	if err != nil {
		return nil, nil, err
	}
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
		kafka.Recover(),
		kafka.Decode(validator),
	)
	return consume, replay, nil
}

// serve runs the HTTP server and the consumer until ctx is canceled or one of them fails, then
// stops both.
func serve(ctx context.Context, srv *http.Server, ln net.Listener, consumer *kafka.Consumer, log zerolog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	consumed := make(chan error, 1)
	go func() { consumed <- consumer.Run(ctx) }()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info().Str("addr", ln.Addr().String()).Strs("brokers", consumer.Brokers).Str("group", consumer.Group).
		Msg("payment service started")

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-served:
		runErr = fmt.Errorf("http server: %w", err)
	case err := <-consumed:
		runErr = fmt.Errorf("consumer stopped: %w", err)
		consumed <- nil // already stopped; let the wait below pass
	}
	cancel()

	shutdownCtx, stop := context.WithTimeout(context.Background(), shutdownTimeout)
	defer stop()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		runErr = errors.Join(runErr, fmt.Errorf("http shutdown: %w", err))
	}
	if err := <-consumed; err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("consumer: %w", err))
	}
	log.Info().Err(runErr).Msg("payment service stopped")
	return runErr
}

// openDB opens the service database and waits up to dbWait for it to answer.
func openDB(ctx context.Context, url string) (*sql.DB, error) {
	db, err := sql.Open("postgres", url)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(maxOpenConns)
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

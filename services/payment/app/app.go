// Package app wires the payment service: configuration, database and migrations, the gateway
// client, the saga consumer and the HTTP API. Run is the whole service; a test starts it with a
// Config of its own and stops it by canceling the context.
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
	// ConnectURL is Kafka Connect's REST API, where the service watches the connector that
	// streams its outbox (/readyz, /metrics). PAYMENT_CONNECT_URL, or CONNECT_URL; empty: not watched.
	ConnectURL string `envconfig:"CONNECT_URL" default:"http://127.0.0.1:8083"`
	// Connector and ReplicationSlot name the service's Debezium connector and its slot.
	Connector       string `default:"payment-outbox"`
	ReplicationSlot string `split_words:"true" default:"payment_outbox"`
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

	db, err := msgpg.Open(ctx, cfg.DatabaseURL, maxOpenConns, dbWait)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := postgres.Migrate(ctx, db); err != nil {
		return err
	}

	reg := msghttp.NewRegistry(db, Service)
	gateway, err := gatewayhttp.New(gatewayhttp.Config{
		URL:      cfg.GatewayURL,
		Timeout:  cfg.GatewayTimeout,
		Attempts: cfg.GatewayAttempts,
	}, reg)
	if err != nil {
		return err
	}
	validator, err := schemas.New()
	if err != nil {
		return fmt.Errorf("load schemas: %w", err)
	}
	outbox := msgpg.NewOutbox(validator)
	steps, err := saga.New(db, outbox, gateway, log, reg)
	if err != nil {
		return err
	}
	deadLetters := msgpg.NewDeadLetters(db, outbox)
	consume, replay := kafka.Handlers(steps.Router().Dispatch, kafka.HandlerConfig{
		Service: Service, Validator: validator, DeadLetters: deadLetters,
		MaxAttempts: cfg.HandlerMaxAttempts, Unavailable: msgpg.IsUnavailable, Log: log, Registry: reg,
	})
	consumer := &kafka.Consumer{
		Brokers: cfg.KafkaBrokers,
		Group:   cfg.ConsumerGroup,
		Topics:  []string{saga.TopicInventory, saga.TopicOrder},
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
	api := httpapi.NewRouter(postgres.NewPayments(db), log, reg, checks...)
	// Operator endpoints: GET /dead-letters, POST /dead-letters/{id}/replay (behind ADMIN_TOKEN).
	msghttp.MountDeadLetters(api, deadLetters, replay, cfg.AdminToken, log)
	msghttp.WarnIfOpen(cfg.AdminToken, log)

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	log.Info().Str("addr", ln.Addr().String()).Strs("brokers", cfg.KafkaBrokers).Str("group", cfg.ConsumerGroup).
		Msg("payment service started")
	err = msghttp.Serve(ctx, msghttp.NewServer(api), ln, parts...)
	log.Info().Err(err).Msg("payment service stopped")
	return err
}

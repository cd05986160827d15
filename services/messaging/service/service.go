// Package service wires, once, what every service of the project runs: its configuration from
// the environment, the logger, the database pool and its migrations, the Prometheus registry,
// the event schemas, the outbox writer, the dead letters, the Kafka consumer with its middleware
// chain, the watch on its CDC path, and an HTTP server with health, readiness, metrics, the
// operator endpoints and one recover policy. A service's app package adds only what is its own:
// its repository, its saga steps, its routes and its long-running parts.
//
//	return service.Run(ctx, "order", cfg.Config, ln, log, postgres.Migrations, func(svc *service.Service) (service.Mount, error) {
//		svc.Consume(saga.Topics, saga.New(svc.DB, svc.Outbox, ...).Router())
//		svc.Part("deadline sweeper", sweeper.Run)
//		return func(r chi.Router) { httpapi.Routes(r, ...) }, nil
//	})
package service

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/debezium"
	msghttp "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/messaging/kafka"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/tracing"
	"outboxsaga.dev/schemas"
)

// Config is what every service reads from its <NAME>_* variables; a service's own Config embeds
// it. Empty fields get the native stack's defaults, derived from the service's name and port (see
// Fill): 127.0.0.1:<port>, postgres://<name>_svc@…/<name>_db, group <name>-service, connector
// <name>-outbox, slot <name>_outbox. No default carries a password: the stack passes every
// credential (make up generates them per stack, docs/architecture.md "Credentials").
type Config struct {
	HTTPAddr string `split_words:"true"`
	// DatabaseURL is the service's runtime role: it may change rows, not the schema.
	DatabaseURL string `split_words:"true"`
	// MigrationsDatabaseURL is the role that owns the service's tables and runs its migrations
	// (<NAME>_MIGRATIONS_DATABASE_URL). The native stack gives it only to `<name> migrate`, which
	// make up runs before it starts the service: the running service holds no owner password.
	// Empty: the service checks that its database is migrated, and migrates it with DatabaseURL
	// only if that role may (tests, whose databases are their own).
	MigrationsDatabaseURL string   `split_words:"true"`
	KafkaBrokers          []string `split_words:"true" default:"127.0.0.1:9092"`
	// KafkaUsername and KafkaPassword are the service's Kafka principal (SASL/SCRAM-SHA-512):
	// <NAME>_KAFKA_USERNAME and <NAME>_KAFKA_PASSWORD. Empty: no authentication (a broker of
	// this stack refuses it).
	KafkaUsername string `split_words:"true"`
	KafkaPassword string `split_words:"true"`
	ConsumerGroup string `split_words:"true"`
	// AdminToken is <NAME>_ADMIN_TOKEN, or ADMIN_TOKEN when that is unset. Empty closes the
	// operator endpoints: they refuse every call (a warning is logged at start).
	AdminToken string `envconfig:"ADMIN_TOKEN"`
	LogLevel   string `split_words:"true"`
	// HandlerMaxAttempts is how often a consumed message is tried before it is dead-lettered.
	HandlerMaxAttempts int `split_words:"true"`
	// DBMaxOpenConns caps the pool: a connection per claimed partition, HTTP, the parts.
	DBMaxOpenConns int `envconfig:"DB_MAX_OPEN_CONNS"`
	// BatchMax is the most messages of one partition claim that the consumer handles in one
	// transaction (<NAME>_BATCH_MAX; kafka.Consumer.BatchMax). Default 32 (docs/bench/TUNING.md,
	// lever 3); 1 handles each message on its own.
	BatchMax int `split_words:"true"`
	// ConnectStatusTopic is Kafka Connect's status topic, where the service follows the state of
	// the connector that streams its outbox (/readyz, /metrics), as its own Kafka principal:
	// <NAME>_CONNECT_STATUS_TOPIC or CONNECT_STATUS_TOPIC. Empty: not watched (tests).
	ConnectStatusTopic string `envconfig:"CONNECT_STATUS_TOPIC" default:"connect-status"`
	// Connector and ReplicationSlot name the service's Debezium connector and its slot.
	Connector       string
	ReplicationSlot string `split_words:"true"`
	// Limits are the HTTP server's Host allowlist and connection cap: <NAME>_ALLOWED_HOSTS or
	// ALLOWED_HOSTS, <NAME>_MAX_CONNECTIONS or MAX_CONNECTIONS.
	msghttp.Limits
}

// Fill sets every empty field to the native stack's default for service name on port.
func (c *Config) Fill(name string, port int) {
	set := func(field *string, v string) {
		if *field == "" {
			*field = v
		}
	}
	set(&c.HTTPAddr, fmt.Sprintf("127.0.0.1:%d", port))
	set(&c.DatabaseURL, fmt.Sprintf("postgres://%[1]s_svc@127.0.0.1:5432/%[1]s_db?sslmode=disable", name))
	set(&c.ConsumerGroup, name+"-service")
	set(&c.LogLevel, "info")
	set(&c.Connector, name+"-outbox")
	set(&c.ReplicationSlot, name+"_outbox")
	if len(c.KafkaBrokers) == 0 {
		c.KafkaBrokers = []string{"127.0.0.1:9092"}
	}
	if c.HandlerMaxAttempts == 0 {
		c.HandlerMaxAttempts = 5
	}
	if c.DBMaxOpenConns == 0 {
		c.DBMaxOpenConns = 20
	}
	if c.BatchMax == 0 {
		c.BatchMax = 32
	}
}

// Filler is a service's configuration: a struct that embeds Config.
type Filler interface {
	Fill(name string, port int)
}

// Load reads the <NAME>_* variables into a service's configuration C (a struct that embeds
// Config) and fills the defaults of the native stack for name on port.
func Load[C any, P interface {
	*C
	Filler
}](name string, port int) (C, error) {
	var cfg C
	if err := envconfig.Process(name, P(&cfg)); err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	P(&cfg).Fill(name, port)
	return cfg, nil
}

// OwnerURL is the database URL of the role that owns the service's tables:
// MigrationsDatabaseURL, else DatabaseURL (a test's database, where one role does both).
func (c Config) OwnerURL() string { return cmp.Or(c.MigrationsDatabaseURL, c.DatabaseURL) }

// OpenOwner opens a pool of two connections on OwnerURL for a one-shot command of the service
// (`order rebuild`, `catalog rebuild`), waiting for the database as the service does.
func (c Config) OpenOwner(ctx context.Context) (*sql.DB, error) {
	db, err := msgpg.Open(ctx, c.OwnerURL(), 2, dbWait)
	if err != nil {
		return nil, fmt.Errorf("open the database as its owner: %w", err)
	}
	return db, nil
}

// dbWait is how long Open waits for the database (a container stack may start a service before
// Postgres answers).
const dbWait = 30 * time.Second

// Service is one running service: what every service has, opened and ready for its own parts.
type Service struct {
	Name   string
	Config Config
	// Log carries the service's name and level.
	Log         zerolog.Logger
	DB          *sql.DB
	Registry    *prometheus.Registry
	Schemas     *schemas.Validator
	Outbox      *msgpg.Outbox
	DeadLetters *msgpg.DeadLetters
	// Tracer starts the service's spans: exported when the OTEL_* environment names an exporter
	// (messaging/tracing), no-ops otherwise. The outbox, the consumer and the HTTP router use it;
	// so do the clients of the outside world (Tracer.Transport).
	Tracer tracing.Tracer

	stopTracing func(context.Context) error
	checks      []msghttp.Check
	parts       []msghttp.Part
	replay      messaging.Handler // nil until Consume
	closing     chan struct{}
}

// Open applies the log level, opens the database and migrates it (the shared messaging
// migrations, then migrations/*.sql of the service's embedded migrations), and makes the
// registry, the schema validator, the outbox writer, the dead letters and, unless
// cfg.ConnectStatusTopic is empty, the watch on the CDC path.
func Open(ctx context.Context, name string, cfg Config, log zerolog.Logger, migrations fs.FS) (*Service, error) {
	cfg.Fill(name, 0)
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("log level %q: %w", cfg.LogLevel, err)
	}
	if cfg.HandlerMaxAttempts < 1 || cfg.DBMaxOpenConns < 1 || cfg.BatchMax < 1 {
		return nil, errors.New("HANDLER_MAX_ATTEMPTS, DB_MAX_OPEN_CONNS and BATCH_MAX must be positive")
	}
	s := &Service{Name: name, Config: cfg, Log: log.Level(level).With().Str("service", name).Logger(), closing: make(chan struct{})}
	if s.Schemas, err = schemas.New(); err != nil {
		return nil, fmt.Errorf("load event schemas: %w", err)
	}
	if s.DB, err = msgpg.Open(ctx, cfg.DatabaseURL, cfg.DBMaxOpenConns, dbWait); err != nil {
		return nil, err
	}
	if err := migrate(ctx, name, cfg, s.DB, migrations); err != nil {
		s.DB.Close()
		return nil, err
	}
	s.Registry = msghttp.NewRegistry(s.DB, name)
	if s.Tracer, s.stopTracing, err = tracing.Setup(ctx, name, os.Getenv); err != nil {
		s.DB.Close()
		return nil, err
	}
	s.Outbox = msgpg.NewOutbox(s.Schemas)
	s.Outbox.Tracer = s.Tracer
	s.DeadLetters = msgpg.NewDeadLetters(s.DB, s.Outbox)
	s.Check(msghttp.Check{Name: "postgres", Probe: s.DB.PingContext})
	// The inbox keeps every event id: the event topics keep every record for ever, and a replay
	// from the beginning must find each event done (msgpg.InboxRetention).
	if cfg.ConnectStatusTopic != "" {
		status := &kafka.ConnectStatus{Brokers: cfg.KafkaBrokers, Topic: cfg.ConnectStatusTopic,
			Username: cfg.KafkaUsername, Password: cfg.KafkaPassword, Log: s.Log}
		s.Part("connect status", status.Run)
		cdc := &debezium.Monitor{Connect: status, DB: s.DB,
			Connector: cfg.Connector, Slot: cfg.ReplicationSlot, Log: s.Log}
		if err := cdc.Register(s.Registry); err != nil {
			s.DB.Close()
			return nil, err
		}
		s.Check(msghttp.Check{Name: "cdc", Probe: cdc.Check})
		s.Part("cdc monitor", cdc.Run)
	}
	return s, nil
}

// Migrate applies the service's migrations (the shared messaging ones, then migrations/*.sql of
// migrations) as the owner role of cfg.MigrationsDatabaseURL, which must be set.
func Migrate(ctx context.Context, name string, cfg Config, log zerolog.Logger, migrations fs.FS) error {
	if cfg.MigrationsDatabaseURL == "" {
		return fmt.Errorf("migrate: %s_MIGRATIONS_DATABASE_URL (the owner role) is not set", strings.ToUpper(name))
	}
	owner, err := msgpg.Open(ctx, cfg.MigrationsDatabaseURL, 2, dbWait)
	if err != nil {
		return fmt.Errorf("open the migrations database: %w", err)
	}
	defer owner.Close()
	if err := msgpg.MigrateService(ctx, owner, name, migrations); err != nil {
		return err
	}
	log.Info().Str("service", name).Msg("migrated")
	return nil
}

// migrate applies the service's migrations: as the owner role of cfg.MigrationsDatabaseURL over a
// pool of its own, closed right after, or on db when that URL is empty.
func migrate(ctx context.Context, name string, cfg Config, db *sql.DB, migrations fs.FS) error {
	if cfg.MigrationsDatabaseURL == "" {
		pending, err := msgpg.PendingService(ctx, db, name, migrations)
		if err != nil || len(pending) == 0 {
			return err
		}
		if err := msgpg.MigrateService(ctx, db, name, migrations); err != nil {
			return fmt.Errorf("%d migrations pending (%s), and the runtime role cannot apply them: run `%s migrate` with %s_MIGRATIONS_DATABASE_URL, the owner role (make up does): %w",
				len(pending), strings.Join(pending, ", "), name, strings.ToUpper(name), err)
		}
		return nil
	}
	owner, err := msgpg.Open(ctx, cfg.MigrationsDatabaseURL, 2, dbWait)
	if err != nil {
		return fmt.Errorf("open the migrations database: %w", err)
	}
	defer owner.Close()
	return msgpg.MigrateService(ctx, owner, name, migrations)
}

// Close closes the database pool.
func (s *Service) Close() error {
	if s.stopTracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.stopTracing(ctx); err != nil {
			s.Log.Warn().Err(err).Msg("flush the last spans")
		}
	}
	return s.DB.Close()
}

// Consume makes the service's Kafka consumer: a member of its consumer group on topics that hands
// every message to router through the middleware chain (kafka.Handlers: log, metrics, dead
// letter, retry, recover, decode). Outages (the database down, or an error a handler marked
// messaging.Outage) are retried until the dependency is back, never dead-lettered. The consumer joins readiness and the operator endpoints replay its dead
// letters. The router's key (Router.Key) names the aggregate id in the log lines.
func (s *Service) Consume(topics []string, router *messaging.Router) {
	consume, replay := kafka.Handlers(router.Dispatch, kafka.HandlerConfig{
		Service: s.Name, Validator: s.Schemas, DeadLetters: s.DeadLetters,
		MaxAttempts: s.Config.HandlerMaxAttempts, Unavailable: unavailable, Keyed: router.Keyed(), Log: s.Log, Registry: s.Registry,
		Tracer: s.Tracer,
	})
	c := &kafka.Consumer{
		Brokers: s.Config.KafkaBrokers, Group: s.Config.ConsumerGroup, Topics: topics,
		Service: s.Name, Username: s.Config.KafkaUsername, Password: s.Config.KafkaPassword,
		Handler: consume, Logger: s.Log, BatchMax: s.Config.BatchMax, Batch: msgpg.Batches(s.DB),
		Registry: s.Registry,
	}
	s.replay = replay
	s.Check(msghttp.Check{Name: "kafka", Probe: func(context.Context) error { return c.Ready() }})
	s.Part("consumer", c.Run)
}

// unavailable tells a dependency's outage from a fault of the message: the database is down
// (msgpg.IsUnavailable), or a handler marked the error messaging.Outage.
func unavailable(err error) bool { return msgpg.IsUnavailable(err) || messaging.IsOutage(err) }

// Part adds a long-running part (a sweeper, a listener): it runs while the service serves, and
// returning before the service stops stops the service.
func (s *Service) Part(name string, run func(ctx context.Context) error) {
	s.parts = append(s.parts, msghttp.Part{Name: name, Run: run})
}

// Check adds a readiness check to /readyz.
func (s *Service) Check(c msghttp.Check) {
	s.checks = append(s.checks, c)
}

// Closing is closed when the service starts shutting down: long-lived responses (a status stream)
// end then, so that the shutdown does not wait for them.
func (s *Service) Closing() <-chan struct{} { return s.closing }

// Mount adds a service's own routes to the router Serve serves.
type Mount func(r chi.Router)

// Run is a whole service: it opens it (Open), lets wire add what is the service's own (its
// consumer, parts and checks) and name its routes, serves on ln until ctx is canceled (Serve),
// and closes it. Under the migrate command (Main) it only applies the migrations, as the owner
// role of cfg.MigrationsDatabaseURL, and returns.
func Run(ctx context.Context, name string, cfg Config, ln net.Listener, log zerolog.Logger,
	migrations fs.FS, wire func(svc *Service) (Mount, error)) error {
	if migrateOnly(ctx) {
		return Migrate(ctx, name, cfg, log, migrations)
	}
	svc, err := Open(ctx, name, cfg, log, migrations)
	if err != nil {
		return err
	}
	defer svc.Close()
	mount, err := wire(svc)
	if err != nil {
		return err
	}
	return svc.Serve(ctx, ln, mount)
}

// Serve serves HTTP on ln and runs every part until ctx is canceled (then it shuts down and
// returns nil) or one of them fails. The router it serves has the one recover policy and the one
// error mapping, GET /healthz, /readyz and /metrics, the operator endpoints on dead letters (behind
// the admin token) and whatever mount adds: the service's own routes.
func (s *Service) Serve(ctx context.Context, ln net.Listener, mount Mount) error {
	r := msghttp.NewRouter(s.Log)
	r.Use(s.Tracer.Middleware(msghttp.RoutePattern))
	msghttp.MountHealth(r, s.Registry, s.checks...)
	if s.replay != nil {
		msghttp.MountDeadLetters(r, s.DeadLetters, s.replay, s.Config.AdminToken, s.Log)
	}
	msghttp.MountPprof(r, s.Config.AdminToken, s.Log)
	mount(r)
	msghttp.WarnIfClosed(s.Config.AdminToken, s.Log)
	srv := msghttp.NewServer(r, s.Config.Limits)
	srv.RegisterOnShutdown(func() { close(s.closing) })
	s.Log.Info().Str("addr", ln.Addr().String()).Strs("brokers", s.Config.KafkaBrokers).
		Str("group", s.Config.ConsumerGroup).Msg(s.Name + " service started")
	err := msghttp.Serve(ctx, srv, s.Config.Limits.Listener(ln), s.parts...)
	s.Log.Info().Err(err).Msg(s.Name + " service stopped")
	return err
}

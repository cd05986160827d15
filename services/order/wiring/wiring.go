// Package wiring wires the order service: the shared service runtime (messaging/service) plus what
// is the order service's own: its repository, saga steps, deadline sweeper, status listener and
// routes. Run is the whole service; a test starts it with a Config and a listener of its own and
// stops it by canceling the context.
package wiring

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/customer"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/messaging/upcast"
	"outboxsaga.dev/order"
	"outboxsaga.dev/order/app"
	"outboxsaga.dev/order/httpapi"
	"outboxsaga.dev/order/postgres"
	"outboxsaga.dev/order/saga"
	"outboxsaga.dev/stack"
)

// The repositories, the status listener and the upcaster are what the application, the routes and
// the fold need.
var (
	_ app.OrderRepository = (*postgres.Orders)(nil)
	_ app.EventStore      = (*postgres.Events)(nil)
	_ app.PriceList       = (*postgres.Prices)(nil)
	_ httpapi.Watcher     = (*postgres.StatusListener)(nil)
	_ httpapi.OrderLister = (*postgres.OrderList)(nil)
	_ order.Upcaster      = (*upcast.Upcaster)(nil)
)

// Service names the service in dead letters, the Kafka client id, the logs and its settings
// (ORDER_*); its row of the stack's table (outboxsaga.dev/stack) holds its port.
const Service = "order"

// Config is the service's configuration: the settings every service has and the order
// service's own, read from ORDER_* variables by LoadConfig.
type Config struct {
	service.Config
	// SagaDeadline is how long an order may stay PENDING before it is canceled with TIMEOUT.
	SagaDeadline time.Duration `split_words:"true" default:"30s"`
	// SweepInterval is how often the deadline sweeper looks for expired orders.
	SweepInterval time.Duration `split_words:"true" default:"1s"`
	// TimelineRetention is how long an order's timeline keeps an event (GET /orders/{id}/events);
	// the order and its event store are kept for ever. 0 (the default since the order is
	// event-sourced) keeps the timeline for ever too: its delivery events are facts the fold
	// reads, and an order whose facts were pruned rebuilds without its delivery.
	TimelineRetention time.Duration `split_words:"true" default:"0"`
	// CustomerTokenPublicKey verifies customer tokens (messaging/customer): ORDER_CUSTOMER_TOKEN_PUBLIC_KEY
	// or CUSTOMER_TOKEN_PUBLIC_KEY, standard base64 of the PKIX DER of the stack's Ed25519 public
	// key. Empty: every customer request is refused (403) and a warning is logged at start.
	CustomerTokenPublicKey string `envconfig:"CUSTOMER_TOKEN_PUBLIC_KEY"`
	// MaxOpenOrders is how many PENDING orders a customer may have at once (ORDER_MAX_OPEN_ORDERS);
	// 0: no cap.
	MaxOpenOrders int `split_words:"true" default:"100"`
	// CustomerRate and CustomerBurst are each customer's request rate, a second, and burst
	// (ORDER_CUSTOMER_RATE, ORDER_CUSTOMER_BURST); a rate of 0 limits nothing.
	CustomerRate  float64 `split_words:"true" default:"50"`
	CustomerBurst int     `split_words:"true" default:"100"`
	// MaxStreams caps the status streams open at once (ORDER_MAX_STREAMS; one more: 503 with
	// Retry-After); StreamLifetime ends each after that long (ORDER_STREAM_LIFETIME).
	MaxStreams     int           `split_words:"true" default:"1000"`
	StreamLifetime time.Duration `split_words:"true" default:"10m"`
	// CreatedVersion is the version of OrderCreated the service writes (ORDER_CREATED_VERSION):
	// 2 (the channel) by default; 1 while consumers that know only v1 still run (the deploy order:
	// consumers first, docs/architecture.md "The order is event-sourced").
	CreatedVersion int `split_words:"true" default:"2"`
}

// LoadConfig reads the configuration from the environment.
func LoadConfig() (Config, error) {
	cfg, err := service.Load[Config](Service, stack.Service(Service).Port)
	if err == nil && (cfg.SagaDeadline <= 0 || cfg.SweepInterval <= 0 || cfg.TimelineRetention < 0) {
		err = errors.New("read config: ORDER_SAGA_DEADLINE and ORDER_SWEEP_INTERVAL must be positive, ORDER_TIMELINE_RETENTION not negative")
	}
	if err == nil && (cfg.MaxOpenOrders < 0 || cfg.CustomerRate < 0 || cfg.CustomerBurst < 1) {
		err = errors.New("read config: ORDER_MAX_OPEN_ORDERS and ORDER_CUSTOMER_RATE must not be negative, ORDER_CUSTOMER_BURST must be positive")
	}
	if err == nil && (cfg.CreatedVersion < 1 || cfg.CreatedVersion > order.CreatedVersion) {
		err = fmt.Errorf("read config: ORDER_CREATED_VERSION must be from 1 to %d", order.CreatedVersion)
	}
	if err == nil && (cfg.MaxStreams < 1 || cfg.StreamLifetime <= 0) {
		err = errors.New("read config: ORDER_MAX_STREAMS and ORDER_STREAM_LIFETIME must be positive")
	}
	return cfg, err
}

// Run runs the service on ln until ctx is canceled, then shuts down and returns nil. It returns
// an error when the service cannot start (database, migrations) or when one of its parts fails.
func Run(ctx context.Context, cfg Config, ln net.Listener, log zerolog.Logger) error {
	return service.Run(ctx, Service, cfg.Config, ln, log, postgres.Migrations, func(svc *service.Service) (service.Mount, error) {
		customers, err := customer.Open(cfg.CustomerTokenPublicKey, svc.Log)
		if err != nil {
			return nil, err
		}
		application := app.New(app.Config{
			DB: svc.DB, Orders: postgres.NewOrders(svc.DB), Events: postgres.NewEvents(svc.DB, svc.Outbox, upcast.New()),
			Prices: postgres.NewPrices(svc.DB), Availability: postgres.NewAvailability(svc.DB), Deadline: cfg.SagaDeadline, MaxOpenOrders: cfg.MaxOpenOrders,
			CreatedVersion: cfg.CreatedVersion,
		})
		metrics := saga.NewMetrics(svc.Registry)
		svc.Consume(saga.Topics, saga.New(svc.DB, application, metrics).Router())
		svc.Part("deadline sweeper", saga.NewSweeper(application, metrics, svc.Log, cfg.SweepInterval).Run)
		listener, err := postgres.NewStatusListener(cfg.DatabaseURL, svc.Log)
		if err != nil {
			return nil, fmt.Errorf("listen for order status changes: %w", err)
		}
		svc.Part("status listener", listener.Run)
		if cfg.TimelineRetention > 0 {
			svc.Part("timeline retention", (&msgpg.Retention{DB: svc.DB, Table: "order_timeline", Column: "recorded_at",
				Keep: cfg.TimelineRetention, Log: svc.Log}).Run)
		}
		return func(r chi.Router) {
			httpapi.Routes(r, httpapi.Config{
				App: application, AdminToken: cfg.AdminToken, Customers: customers,
				Rate: customer.NewLimiter(cfg.CustomerRate, cfg.CustomerBurst), Watcher: listener, Log: svc.Log,
				Registry: svc.Registry, Closing: svc.Closing(), MaxStreams: cfg.MaxStreams, StreamLifetime: cfg.StreamLifetime,
			})
			httpapi.ListRoutes(r, httpapi.ListConfig{Orders: postgres.NewOrderList(svc.DB), AdminToken: cfg.AdminToken, Log: svc.Log})
		}, nil
	})
}

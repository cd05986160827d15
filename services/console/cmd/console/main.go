// Command console runs the operator's console of the saga pipeline (its port: the stack table): the
// sagas, one saga live, every service's dead letters with replay, and the pipeline's health
// (connectors, replication slots, consumer lag). It reads only the pipeline's public surfaces
// and writes only through the services' operator endpoints and Connect's REST API.
//
// Configuration comes from the environment:
//
//	CONSOLE_ADDR                listen address (default 127.0.0.1:<the console's port in the stack table>)
//	CONSOLE_ADMIN_TOKEN         the operator token (else ADMIN_TOKEN, else $STACK_DIR/admin-token;
//	                            required): the login asks for it, and the console sends it to the
//	                            services
//	CONSOLE_<SVC>_URL, else <SVC>_URL (CONSOLE_ORDER_URL, ORDER_URL, ... for every saga service)
//	                            the services (default: the stack table's, offset 0)
//	CONSOLE_CONNECT_URL, else CONNECT_URL
//	                            Kafka Connect's REST API (default: the stack table's, offset 0)
//	CONNECT_REST_USER, CONNECT_REST_PASSWORD
//	                            its login (default user operator; the password else
//	                            $STACK_DIR/secrets/connect-rest-<user>)
//	CONSOLE_KAFKA_BROKERS, else KAFKA_BROKERS
//	                            the brokers, comma-separated (default: the stack table's, offset 0)
//	CONSOLE_KAFKA_USERNAME, CONSOLE_KAFKA_PASSWORD
//	                            the read-only principal (default user viewer; the password else
//	                            $STACK_DIR/secrets/kafka-<user>)
//	STACK_DIR                   where a stack started by make up keeps its secrets (unset: only the
//	                            environment counts)
//	CONSOLE_DATABASE_URL        a read-only login role's URL, for pg_replication_slots (empty:
//	                            the slots are not shown, and the page says so)
//	CONSOLE_STUCK_AFTER         a PENDING saga older than this is stuck (default 10s)
//	CONSOLE_LAG_RECORDS, CONSOLE_LAG_BEHIND
//	                            a partition further behind is red (default 1000 records, 30s)
//	CONSOLE_SAMPLE_INTERVAL     how often the health is sampled (default 2s)
//	CONSOLE_LOG_LEVEL           zerolog level (default info)
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"outboxsaga.dev/console"
	"outboxsaga.dev/console/connect"
	"outboxsaga.dev/console/httpapi"
	"outboxsaga.dev/console/kafka"
	"outboxsaga.dev/console/postgres"
	"outboxsaga.dev/console/services"
	"outboxsaga.dev/stack"
)

// config is the console's configuration.
type config struct {
	Addr           string        `envconfig:"CONSOLE_ADDR"`
	AdminToken     string        `envconfig:"CONSOLE_ADMIN_TOKEN"`
	ConnectURL     string        `envconfig:"CONSOLE_CONNECT_URL"`
	ConnectUser    string        `envconfig:"CONNECT_REST_USER" default:"operator"`
	ConnectPass    string        `envconfig:"CONNECT_REST_PASSWORD"`
	Brokers        []string      `envconfig:"CONSOLE_KAFKA_BROKERS"`
	KafkaUser      string        `envconfig:"CONSOLE_KAFKA_USERNAME" default:"viewer"`
	KafkaPass      string        `envconfig:"CONSOLE_KAFKA_PASSWORD"`
	DatabaseURL    string        `envconfig:"CONSOLE_DATABASE_URL"`
	StuckAfter     time.Duration `envconfig:"CONSOLE_STUCK_AFTER" default:"10s"`
	LagRecords     int64         `envconfig:"CONSOLE_LAG_RECORDS" default:"1000"`
	LagBehind      time.Duration `envconfig:"CONSOLE_LAG_BEHIND" default:"30s"`
	SampleInterval time.Duration `envconfig:"CONSOLE_SAMPLE_INTERVAL" default:"2s"`
	LogLevel       string        `envconfig:"CONSOLE_LOG_LEVEL" default:"info"`
	// ServiceURLs holds each saga service's URL: <SVC>_URL, else the stack table's.
	ServiceURLs map[string]string `ignored:"true"`
}

// The adapters implement what the monitor and the routes need of them.
var (
	_ httpapi.Services        = (*services.Client)(nil)
	_ httpapi.Connect         = (*connect.Client)(nil)
	_ console.ConnectorSource = (*connect.Client)(nil)
	_ console.SlotSource      = (*postgres.Slots)(nil)
	_ console.LagSource       = (*kafka.Reader)(nil)
)

func main() {
	cfg, err := load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "console:", err)
		os.Exit(2)
	}
	log := newLogger(cfg.LogLevel)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		log.Error().Err(err).Msg("listen")
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info().Str("addr", "http://"+ln.Addr().String()).Msg("console listening")
	if err := run(ctx, cfg, ln, log); err != nil {
		log.Error().Err(err).Msg("console stopped")
		stop()
		os.Exit(1)
	}
}

// load reads the environment.
func load() (config, error) {
	var cfg config
	if err := envconfig.Process("", &cfg); err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	cfg.Addr = cmp.Or(cfg.Addr, fmt.Sprintf("127.0.0.1:%d", stack.Service("console").Port))
	if cfg.AdminToken == "" {
		cfg.AdminToken = os.Getenv("ADMIN_TOKEN")
	}
	cfg.ConnectURL = cmp.Or(cfg.ConnectURL, os.Getenv("CONNECT_URL"), fmt.Sprintf("http://127.0.0.1:%d", stack.ConnectPort))
	if len(cfg.Brokers) == 0 {
		cfg.Brokers = strings.Split(cmp.Or(os.Getenv("KAFKA_BROKERS"), fmt.Sprintf("127.0.0.1:%d", stack.KafkaPort)), ",")
	}
	if dir := os.Getenv("STACK_DIR"); dir != "" {
		cfg.AdminToken = cmp.Or(cfg.AdminToken, secret(filepath.Join(dir, "admin-token")))
		cfg.ConnectPass = cmp.Or(cfg.ConnectPass, secret(filepath.Join(dir, "secrets", "connect-rest-"+cfg.ConnectUser)))
		cfg.KafkaPass = cmp.Or(cfg.KafkaPass, secret(filepath.Join(dir, "secrets", "kafka-"+cfg.KafkaUser)))
	}
	if cfg.AdminToken == "" {
		return cfg, errors.New("read config: CONSOLE_ADMIN_TOKEN (or ADMIN_TOKEN) is not set: the console is for operators only")
	}
	cfg.ServiceURLs = map[string]string{}
	for _, p := range stack.SagaServices() {
		u := cmp.Or(os.Getenv("CONSOLE_"+p.Env()+"_URL"), os.Getenv(p.URLVar), p.URL())
		cfg.ServiceURLs[p.Name] = strings.TrimSuffix(u, "/")
	}
	return cfg, nil
}

// secret returns a secret file's first line ("" when there is none).
func secret(path string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	return strings.TrimSpace(line)
}

func newLogger(level string) zerolog.Logger {
	l, err := zerolog.ParseLevel(level)
	if err != nil {
		l = zerolog.InfoLevel
	}
	return zerolog.New(os.Stderr).Level(l).With().Timestamp().Str("service", "console").Logger()
}

// run serves the console on ln until ctx ends.
func run(ctx context.Context, cfg config, ln net.Listener, log zerolog.Logger) error {
	hc := &http.Client{Timeout: 0} // each call has its context's deadline; status streams last
	var names []string
	var groups []kafka.Group
	for _, p := range stack.SagaServices() {
		names = append(names, p.Name)
		groups = append(groups, kafka.Group{Name: p.ConsumerGroup(), Topics: p.Consumes})
	}
	svc := services.New(hc, cfg.AdminToken, names, cfg.ServiceURLs)
	conn := connect.New(&http.Client{Timeout: 10 * time.Second}, cfg.ConnectURL, cfg.ConnectUser, cfg.ConnectPass)

	var slots console.SlotSource
	if cfg.DatabaseURL != "" {
		s, err := postgres.Open(cfg.DatabaseURL)
		if err != nil {
			return err
		}
		defer s.Close()
		slots = s
	}
	var lags console.LagSource
	if len(cfg.Brokers) > 0 && cfg.Brokers[0] != "" {
		r, err := kafka.Open(kafka.Config{Brokers: cfg.Brokers, Username: cfg.KafkaUser, Password: cfg.KafkaPass, Groups: groups})
		if err != nil {
			log.Warn().Err(err).Msg("kafka unreachable: the consumer lag is not shown")
		} else {
			defer r.Close()
			lags = r
		}
	}
	mon := console.NewMonitor(conn, slots, lags, cfg.SampleInterval)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h, err := httpapi.Handler(httpapi.Config{
		Registry: reg,
		Services: svc, Connect: conn, Health: mon, AdminToken: cfg.AdminToken, StuckAfter: cfg.StuckAfter,
		Thresholds: console.Thresholds{LagRecords: cfg.LagRecords, LagBehind: cfg.LagBehind, RetainedBytes: console.DefaultThresholds.RetainedBytes},
		Log:        log,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	monDone := make(chan struct{})
	go func() {
		defer close(monDone)
		_ = mon.Run(ctx)
	}()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		shut, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		err = srv.Shutdown(shut)
	}
	cancel()
	<-monDone
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

package service_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/messaging/service/servicetest"
)

// config is a service's configuration as the services declare it.
type config struct {
	service.Config
	Extra time.Duration `default:"3s"`
}

func TestLoad(t *testing.T) {
	defaults := service.Config{
		HTTPAddr:           "127.0.0.1:8099",
		DatabaseURL:        "postgres://demo_svc@127.0.0.1:5432/demo_db?sslmode=disable", // no password by default
		KafkaBrokers:       []string{"127.0.0.1:9092"},
		ConsumerGroup:      "demo-service",
		LogLevel:           "info",
		HandlerMaxAttempts: 5,
		DBMaxOpenConns:     20,
		BatchMax:           32,
		ConnectStatusTopic: "connect-status",
		Connector:          "demo-outbox",
		ReplicationSlot:    "demo_outbox",
	}
	with := func(change func(*service.Config)) service.Config {
		c := defaults
		change(&c)
		return c
	}
	tests := []struct {
		name string
		env  map[string]string
		want service.Config
	}{
		{name: "defaults from name and port", want: defaults},
		{name: "prefixed variables", env: map[string]string{
			"DEMO_HTTP_ADDR": "0.0.0.0:1", "DEMO_KAFKA_BROKERS": "a:1,b:2", "DEMO_CONSUMER_GROUP": "g", "DEMO_LOG_LEVEL": "debug",
			"DEMO_HANDLER_MAX_ATTEMPTS": "2", "DEMO_DB_MAX_OPEN_CONNS": "7", "DEMO_CONNECTOR": "c", "DEMO_REPLICATION_SLOT": "s",
			"DEMO_BATCH_MAX": "1",
		}, want: with(func(c *service.Config) {
			c.HTTPAddr, c.KafkaBrokers, c.ConsumerGroup, c.LogLevel = "0.0.0.0:1", []string{"a:1", "b:2"}, "g", "debug"
			c.HandlerMaxAttempts, c.DBMaxOpenConns, c.Connector, c.ReplicationSlot = 2, 7, "c", "s"
			c.BatchMax = 1
		})},
		{name: "shared ADMIN_TOKEN and CONNECT_STATUS_TOPIC", env: map[string]string{"ADMIN_TOKEN": "a", "CONNECT_STATUS_TOPIC": "st"},
			want: with(func(c *service.Config) { c.AdminToken, c.ConnectStatusTopic = "a", "st" })},
		{name: "the service's own win", env: map[string]string{"ADMIN_TOKEN": "a", "DEMO_ADMIN_TOKEN": "b", "CONNECT_STATUS_TOPIC": "x", "DEMO_CONNECT_STATUS_TOPIC": "y"},
			want: with(func(c *service.Config) { c.AdminToken, c.ConnectStatusTopic = "b", "y" })},
		{name: "unprefixed HTTP_ADDR is not ours", env: map[string]string{"HTTP_ADDR": "0.0.0.0:2"}, want: defaults},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, kv := range os.Environ() {
				if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "DEMO_") || k == "ADMIN_TOKEN" || k == "CONNECT_STATUS_TOPIC" {
					t.Setenv(k, "")
					os.Unsetenv(k)
				}
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg, err := service.Load[config]("demo", 8099)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Config, tt.want) || cfg.Extra != 3*time.Second {
				t.Fatalf("Load = %+v (extra %s)\nwant %+v", cfg.Config, cfg.Extra, tt.want)
			}
		})
	}
	t.Run("not a number", func(t *testing.T) {
		t.Setenv("DEMO_HANDLER_MAX_ATTEMPTS", "x")
		if _, err := service.Load[config]("demo", 8099); err == nil {
			t.Fatal("Load with a bad number = nil error")
		}
	})
}

// TestOpenRefusesNonPositiveLimits: a limit below 1 is a mistake, not "unlimited" or "off".
func TestOpenRefusesNonPositiveLimits(t *testing.T) {
	tests := []struct {
		name string
		cfg  service.Config
	}{
		{name: "handler attempts", cfg: service.Config{HandlerMaxAttempts: -1}},
		{name: "pool", cfg: service.Config{DBMaxOpenConns: -1}},
		{name: "batch", cfg: service.Config{BatchMax: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := service.Open(context.Background(), "demo", tt.cfg, zerolog.New(io.Discard), fstest.MapFS{})
			if err == nil || !strings.Contains(err.Error(), "must be positive") {
				t.Fatalf("Open = %v, want an error on the limit", err)
			}
		})
	}
}

// TestServe runs a service without Kafka or Connect: its own routes, the shared ones, the one
// recover policy, and a clean stop.
func TestServe(t *testing.T) {
	_, dbURL := pgtest.MustOpenTestDBURL(t)
	svc, err := service.Open(context.Background(), "demo", service.Config{DatabaseURL: dbURL, AdminToken: "tok", KafkaBrokers: []string{"127.0.0.1:1"}}, zerolog.New(io.Discard), fstest.MapFS{"migrations/0001_demo.sql": {Data: []byte("CREATE TABLE demo (n int);")}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	svc.Consume([]string{"demo-events"}, messaging.NewRouter()) // brokers unreachable: never ready
	ran := make(chan struct{})
	svc.Part("demo part", func(ctx context.Context) error { close(ran); <-ctx.Done(); return nil })
	base, stop := servicetest.Start(t, func(ctx context.Context, ln net.Listener) error {
		return svc.Serve(ctx, ln, func(r chi.Router) {
			r.Get("/own", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("mine")) })
			r.Get("/boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
		})
	})
	get := func(path, auth string, want int, body string) servicetest.Request {
		return servicetest.Request{Method: http.MethodGet, Path: path, Auth: auth, Want: want, WantBody: body}
	}
	servicetest.Expect(t, base,
		get("/own", "", 200, "mine"),
		get("/healthz", "", 200, `"ok"`),
		get("/readyz", "", 503, `"kafka"`),
		get("/metrics", "", 200, "go_goroutines"),
		get("/boom", "", 500, `{"code":"internal","error":"internal error"}`),
		get("/nope", "", 404, `"not_found"`),
		get("/dead-letters", "", 401, `"unauthorized"`),
		get("/dead-letters", "Bearer tok", 200, "[]"),
	)
	<-ran
	stop()
	if _, ok := <-svc.Closing(); ok {
		t.Fatal("Closing is not closed after the shutdown")
	}
}

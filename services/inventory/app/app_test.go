package app_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"outboxsaga.dev/inventory/app"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/service"
)

func TestLoadConfig(t *testing.T) {
	defaults := app.Config{Config: service.Config{
		HTTPAddr:           "127.0.0.1:8081",
		DatabaseURL:        "postgres://inventory_svc:inventory_svc@127.0.0.1:5432/inventory_db?sslmode=disable",
		KafkaBrokers:       []string{"127.0.0.1:9092"},
		ConsumerGroup:      "inventory-service",
		LogLevel:           "info",
		ConnectURL:         "http://127.0.0.1:8083",
		Connector:          "inventory-outbox",
		ReplicationSlot:    "inventory_outbox",
		HandlerMaxAttempts: 5,
		DBMaxOpenConns:     20,
	}}
	with := func(change func(*app.Config)) app.Config {
		c := defaults
		change(&c)
		return c
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    app.Config
		wantErr bool
	}{
		{name: "defaults", want: defaults},
		{
			name: "prefixed variables",
			env: map[string]string{
				"INVENTORY_HTTP_ADDR": "0.0.0.0:9000", "INVENTORY_KAFKA_BROKERS": "k1:9092,k2:9092",
				"INVENTORY_CONSUMER_GROUP": "g", "INVENTORY_HANDLER_MAX_ATTEMPTS": "2", "INVENTORY_LOG_LEVEL": "debug",
			},
			want: with(func(c *app.Config) {
				c.HTTPAddr, c.KafkaBrokers, c.ConsumerGroup, c.HandlerMaxAttempts, c.LogLevel = "0.0.0.0:9000", []string{"k1:9092", "k2:9092"}, "g", 2, "debug"
			}),
		},
		{name: "shared ADMIN_TOKEN", env: map[string]string{"ADMIN_TOKEN": "a"}, want: with(func(c *app.Config) { c.AdminToken = "a" })},
		{
			name: "INVENTORY_ADMIN_TOKEN wins",
			env:  map[string]string{"ADMIN_TOKEN": "a", "INVENTORY_ADMIN_TOKEN": "b"},
			want: with(func(c *app.Config) { c.AdminToken = "b" }),
		},
		{name: "unprefixed HTTP_ADDR is not ours", env: map[string]string{"HTTP_ADDR": "0.0.0.0:1"}, want: defaults},
		// service.Config.Fill: an unset (zero) count takes the default; a negative one fails Run.
		{name: "zero attempts take the default", env: map[string]string{"INVENTORY_HANDLER_MAX_ATTEMPTS": "0"}, want: defaults},
		{name: "not a number", env: map[string]string{"INVENTORY_HANDLER_MAX_ATTEMPTS": "x"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got, err := app.LoadConfig()
			if (err != nil) != tt.wantErr {
				t.Fatalf("LoadConfig() error = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("LoadConfig() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// A configuration the runtime cannot run with stops Run before it opens anything.
func TestRunRejectsNegativeAttempts(t *testing.T) {
	clearEnv(t)
	t.Setenv("INVENTORY_HANDLER_MAX_ATTEMPTS", "-1")
	cfg, err := app.LoadConfig()
	if err != nil {
		t.Fatalf("LoadConfig() error = %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := app.Run(context.Background(), cfg, ln, zerolog.Nop()); err == nil {
		t.Fatal("Run() with INVENTORY_HANDLER_MAX_ATTEMPTS=-1 = nil error")
	}
}

// clearEnv unsets, for the test, every variable LoadConfig reads (make test exports the
// stack's addresses, which would otherwise override the defaults under test).
func clearEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "INVENTORY_") || k == "ADMIN_TOKEN" || k == "CONNECT_URL" {
			t.Setenv(k, "") // restores the value after the test
			os.Unsetenv(k)
		}
	}
}

// TestRun starts the whole service on a throwaway database. Kafka points at a closed port: the
// consumer keeps retrying (and /readyz says so) while HTTP serves, and a test never joins the
// real consumer group. Run returns nil once its context is canceled.
func TestRun(t *testing.T) {
	_, dbURL := pgtest.MustOpenTestDBURL(t)
	cfg := app.Config{Config: service.Config{
		DatabaseURL:        dbURL,
		KafkaBrokers:       []string{"127.0.0.1:1"}, // nothing listens: Kafka stays unreachable
		ConsumerGroup:      "inventory-test",
		AdminToken:         "s3cret",
		HandlerMaxAttempts: 1,
		DBMaxOpenConns:     5,
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg, ln, zerolog.Nop()) }()
	base := "http://" + ln.Addr().String()

	tests := []struct {
		method, path, auth, body string
		want                     int
		wantBody                 string
	}{
		{method: http.MethodGet, path: "/healthz", want: http.StatusOK, wantBody: `"ok"`},
		{method: http.MethodPut, path: "/stock/A100", body: `{"available": 3}`, want: http.StatusUnauthorized},
		{method: http.MethodPut, path: "/stock/A100", auth: "Bearer s3cret", body: `{"available": 3}`, want: http.StatusOK},
		{method: http.MethodGet, path: "/stock/A100", want: http.StatusOK, wantBody: `"available":3`},
		{method: http.MethodGet, path: "/readyz", want: http.StatusServiceUnavailable, wantBody: `"failed":{"kafka":`},
		{method: http.MethodGet, path: "/metrics", want: http.StatusOK, wantBody: `inventory_reservations_total{outcome="reserved"} 0`},
		{method: http.MethodGet, path: "/dead-letters", want: http.StatusUnauthorized},
		{method: http.MethodGet, path: "/dead-letters", auth: "Bearer s3cret", want: http.StatusOK},
	}
	for _, tt := range tests {
		status, body := call(t, tt.method, base+tt.path, tt.auth, tt.body)
		if status != tt.want || !strings.Contains(body, tt.wantBody) {
			t.Errorf("%s %s = %d %.200s, want %d containing %q", tt.method, tt.path, status, body, tt.want, tt.wantBody)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run() = %v, want nil after cancel", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run() did not return after cancel")
	}
}

// call sends a JSON request with an Authorization header (none when auth is empty) and returns
// the status and body.
func call(t *testing.T, method, u, auth, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body)) // the test's own method and URL
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", auth)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw)
}

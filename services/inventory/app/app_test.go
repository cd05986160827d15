package app_test

import (
	"context"
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
)

func TestLoadConfig(t *testing.T) {
	defaults := app.Config{
		HTTPAddr:           "127.0.0.1:8081",
		DatabaseURL:        "postgres://inventory_svc:inventory_svc@127.0.0.1:5432/inventory_db?sslmode=disable",
		KafkaBrokers:       []string{"127.0.0.1:9092"},
		ConsumerGroup:      "inventory-service",
		LogLevel:           "info",
		ConnectURL:         "http://127.0.0.1:8083",
		Connector:          "inventory-outbox",
		ReplicationSlot:    "inventory_outbox",
		HandlerMaxAttempts: 5,
	}
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
		{name: "zero attempts", env: map[string]string{"INVENTORY_HANDLER_MAX_ATTEMPTS": "0"}, wantErr: true},
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

// clearEnv unsets, for the test, every variable LoadConfig reads.
func clearEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "INVENTORY_") || k == "ADMIN_TOKEN" || k == "CONNECT_URL" {
			t.Setenv(k, "") // restores the value after the test
			os.Unsetenv(k)
		}
	}
}

// Run serves HTTP on a database of its own while the consumer waits for Kafka, and returns nil
// once its context is canceled.
func TestRunStartsAndStops(t *testing.T) {
	_, dbURL := pgtest.MustOpenTestDBURL(t)
	cfg := app.Config{
		HTTPAddr:           freeAddr(t),
		DatabaseURL:        dbURL,
		KafkaBrokers:       []string{freeAddr(t)}, // nothing listens: Kafka stays unreachable
		ConsumerGroup:      "inventory-test",
		HandlerMaxAttempts: 1,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg, zerolog.Nop()) }()

	base := "http://" + cfg.HTTPAddr
	waitFor(t, base+"/healthz", http.StatusOK)
	if got := status(t, http.MethodPut, base+"/stock/A100", `{"available": 3}`); got != http.StatusOK {
		t.Errorf("PUT /stock/A100 = %d, want 200", got)
	}
	if got := status(t, http.MethodGet, base+"/stock/A100", ""); got != http.StatusOK {
		t.Errorf("GET /stock/A100 = %d, want 200", got)
	}
	if got := status(t, http.MethodGet, base+"/readyz", ""); got != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz without Kafka = %d, want 503", got)
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

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitFor(t *testing.T, u string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(u); err == nil {
			res.Body.Close()
			if res.StatusCode == want {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer %d in time", u, want)
}

func status(t *testing.T, method, u, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

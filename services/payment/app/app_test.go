package app_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/payment/app"
)

func TestLoadConfig(t *testing.T) {
	defaults := app.Config{
		Config: service.Config{
			HTTPAddr:           "127.0.0.1:8082",
			DatabaseURL:        "postgres://payment_svc:payment_svc@127.0.0.1:5432/payment_db?sslmode=disable",
			KafkaBrokers:       []string{"127.0.0.1:9092"},
			ConsumerGroup:      "payment-service",
			LogLevel:           "info",
			ConnectURL:         "http://127.0.0.1:8083",
			Connector:          "payment-outbox",
			ReplicationSlot:    "payment_outbox",
			HandlerMaxAttempts: 5,
			DBMaxOpenConns:     20,
		},
		GatewayURL:      "http://127.0.0.1:8089",
		GatewayTimeout:  2 * time.Second,
		GatewayAttempts: 4,
	}
	tests := []struct {
		name    string
		env     map[string]string
		want    func(c *app.Config)
		wantErr bool
	}{
		{name: "defaults"},
		{name: "overrides", env: map[string]string{
			"PAYMENT_HTTP_ADDR": "0.0.0.0:9000", "PAYMENT_KAFKA_BROKERS": "k1:9092,k2:9092",
			"PAYMENT_GATEWAY_TIMEOUT": "500ms", "PAYMENT_GATEWAY_ATTEMPTS": "2",
		}, want: func(c *app.Config) {
			c.HTTPAddr, c.KafkaBrokers = "0.0.0.0:9000", []string{"k1:9092", "k2:9092"}
			c.GatewayTimeout, c.GatewayAttempts = 500*time.Millisecond, 2
		}},
		{name: "shared admin token", env: map[string]string{"ADMIN_TOKEN": "shared"},
			want: func(c *app.Config) { c.AdminToken = "shared" }},
		{name: "own admin token wins", env: map[string]string{"ADMIN_TOKEN": "shared", "PAYMENT_ADMIN_TOKEN": "own"},
			want: func(c *app.Config) { c.AdminToken = "own" }},
		{name: "no attempts", env: map[string]string{"PAYMENT_GATEWAY_ATTEMPTS": "0"}, wantErr: true},
		{name: "bad duration", env: map[string]string{"PAYMENT_GATEWAY_TIMEOUT": "soon"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got, err := app.LoadConfig()
			if (err != nil) != tt.wantErr {
				t.Fatalf("LoadConfig error = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			want := defaults
			if tt.want != nil {
				tt.want(&want)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("LoadConfig = %+v, want %+v", got, want)
			}
		})
	}
}

// TestRun starts the whole service on a test database, with Kafka and the gateway unreachable
// (so it touches nothing real), and stops it.
func TestRun(t *testing.T) {
	db, dbURL := pgtest.MustOpenTestDBURL(t)
	cfg := app.Config{
		Config: service.Config{
			DatabaseURL:        dbURL,
			KafkaBrokers:       []string{"127.0.0.1:1"},
			ConsumerGroup:      "payment-app-test",
			LogLevel:           "debug",
			HandlerMaxAttempts: 1,
			AdminToken:         "secret",
		},
		GatewayURL:      "http://127.0.0.1:1",
		GatewayTimeout:  time.Second,
		GatewayAttempts: 1,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg, ln, zerolog.New(zerolog.NewTestWriter(t))) }()

	// The listener is bound already: the first request waits until the service serves, which it
	// does once its database is migrated.
	base := "http://" + ln.Addr().String()
	if status, body := do(t, "GET", base+"/healthz", ""); status != http.StatusOK {
		t.Fatalf("GET /healthz = %d %s, want 200", status, body)
	}
	poison := &messaging.Message{Topic: "order-events", Partition: 0, Offset: 42, Key: "o1", Value: []byte("not json")}
	id, err := msgpg.NewDeadLetters(db, pgtest.MustOutbox(t)).Store(context.Background(), app.Service, poison, errors.New("decode envelope"), 1)
	if err != nil {
		t.Fatal(err)
	}
	replayPath := "/dead-letters/" + strconv.FormatInt(id, 10) + "/replay"

	tests := []struct {
		method     string
		path       string
		token      string
		wantStatus int
		wantPart   string
	}{
		{method: "GET", path: "/readyz", wantStatus: http.StatusServiceUnavailable, wantPart: `"kafka"`},
		{method: "GET", path: "/payments/o1", wantStatus: http.StatusNotFound, wantPart: `"not_found"`},
		{method: "GET", path: "/metrics", wantStatus: http.StatusOK, wantPart: "go_goroutines"},
		{method: "GET", path: "/dead-letters", wantStatus: http.StatusUnauthorized, wantPart: `"unauthorized"`},
		{method: "GET", path: "/dead-letters", token: "secret", wantStatus: http.StatusOK, wantPart: `"offset":42`},
		{method: "POST", path: replayPath, wantStatus: http.StatusUnauthorized, wantPart: `"unauthorized"`},
		// The stored record still does not decode: the replay fails and the dead letter stays.
		{method: "POST", path: replayPath, token: "secret", wantStatus: http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		status, body := do(t, tt.method, base+tt.path, tt.token)
		if status != tt.wantStatus || !strings.Contains(body, tt.wantPart) {
			t.Errorf("%s %s = %d %s, want %d containing %s", tt.method, tt.path, status, body, tt.wantStatus, tt.wantPart)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after cancel", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// client gives up on a service that never answers (Run failed before it served).
var client = &http.Client{Timeout: 30 * time.Second}

func do(t *testing.T, method, u, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// clearEnv unsets, for the test, every variable LoadConfig reads (make test exports the
// stack's addresses, which would otherwise override the defaults under test).
func clearEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PAYMENT_") || k == "ADMIN_TOKEN" || k == "CONNECT_URL" {
			t.Setenv(k, "") // restores the value after the test
			os.Unsetenv(k)
		}
	}
}

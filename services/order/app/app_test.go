package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/order/app"
)

const body = `{"customerId":"U1","currency":"KRW","paymentToken":"tok_ok","items":[{"sku":"A100","qty":1,"unitPrice":15000}]}`

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(app.Config) bool
	}{
		{name: "defaults", check: func(c app.Config) bool {
			return c.HTTPAddr == "127.0.0.1:8080" && c.ConsumerGroup == "order-service" && c.SagaDeadline == 30*time.Second &&
				c.SweepInterval == time.Second && c.HandlerMaxAttempts == 5 && len(c.KafkaBrokers) == 1 &&
				c.DatabaseURL == "postgres://order_svc:order_svc@127.0.0.1:5432/order_db?sslmode=disable" && c.AdminToken == ""
		}},
		{name: "overrides", env: map[string]string{
			"ORDER_HTTP_ADDR": "0.0.0.0:9999", "ORDER_KAFKA_BROKERS": "a:1,b:2", "ORDER_SAGA_DEADLINE": "5s",
			"ORDER_SWEEP_INTERVAL": "100ms", "ORDER_DB_MAX_OPEN_CONNS": "7",
		}, check: func(c app.Config) bool {
			return c.HTTPAddr == "0.0.0.0:9999" && len(c.KafkaBrokers) == 2 && c.SagaDeadline == 5*time.Second &&
				c.SweepInterval == 100*time.Millisecond && c.DBMaxOpenConns == 7
		}},
		{name: "shared admin token", env: map[string]string{"ADMIN_TOKEN": "shared"}, check: func(c app.Config) bool {
			return c.AdminToken == "shared"
		}},
		{name: "own admin token wins", env: map[string]string{"ADMIN_TOKEN": "shared", "ORDER_ADMIN_TOKEN": "own"}, check: func(c app.Config) bool {
			return c.AdminToken == "own"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg, err := app.LoadConfig()
			if err != nil || !tt.check(cfg) {
				t.Fatalf("LoadConfig() = %+v, %v", cfg, err)
			}
		})
	}
	t.Run("non-positive deadline", func(t *testing.T) {
		t.Setenv("ORDER_SAGA_DEADLINE", "0s")
		if _, err := app.LoadConfig(); err == nil {
			t.Fatal("LoadConfig() with a zero saga deadline = nil error")
		}
	})
}

// TestRun starts the whole service on a throwaway database. Kafka points at a closed port: the
// consumer keeps retrying (and /readyz says so) while HTTP, the sweeper and the status stream
// work, and a test never joins the real consumer group.
func TestRun(t *testing.T) {
	_, dbURL := pgtest.MustOpenTestDBURL(t)
	cfg := app.Config{
		Config: service.Config{
			DatabaseURL:        dbURL,
			KafkaBrokers:       []string{"127.0.0.1:1"},
			ConsumerGroup:      "order-app-test",
			AdminToken:         "s3cret",
			LogLevel:           "warn",
			HandlerMaxAttempts: 1,
			DBMaxOpenConns:     5,
		},
		SagaDeadline:  time.Second,
		SweepInterval: 50 * time.Millisecond,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- app.Run(ctx, cfg, ln, zerolog.New(io.Discard)) }()
	base := "http://" + ln.Addr().String()

	// The operator prices the SKU first (PUT /prices is behind the admin token).
	req, _ := http.NewRequest(http.MethodPut, base+"/prices/A100", strings.NewReader(`{"unitPrice":15000,"currency":"KRW"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer s3cret")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("PUT /prices/A100 = %v, %v", res, err)
	}

	// An order nobody answers times out: the sweeper cancels it and the stream sees it.
	first := create(t, base)
	stream := openStream(t, base, first)
	stream.want(t, "PENDING")
	stream.want(t, "CANCELED")
	var o struct{ Status, Reason string }
	getJSON(t, base+"/orders/"+first, http.StatusOK, &o)
	if o.Status != "CANCELED" || o.Reason != "TIMEOUT" {
		t.Fatalf("order = %+v, want CANCELED TIMEOUT", o)
	}
	var timeline []struct{ EventType, Source string }
	getJSON(t, base+"/orders/"+first+"/events", http.StatusOK, &timeline)
	if len(timeline) != 2 || timeline[0].EventType != "OrderCreated" || timeline[1].EventType != "OrderCanceled" {
		t.Fatalf("timeline = %+v, want OrderCreated, OrderCanceled", timeline)
	}

	var ready struct{ Failed map[string]string }
	getJSON(t, base+"/readyz", http.StatusServiceUnavailable, &ready)
	if _, ok := ready.Failed["kafka"]; !ok || len(ready.Failed) != 1 {
		t.Fatalf("/readyz failed = %v, want only kafka", ready.Failed)
	}

	// The operator endpoints are mounted behind the admin token.
	tests := []struct {
		auth string
		want int
	}{{"", http.StatusUnauthorized}, {"Bearer wrong", http.StatusUnauthorized}, {"Bearer s3cret", http.StatusOK}}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodGet, base+"/dead-letters", nil)
		req.Header.Set("Authorization", tt.auth)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tt.want {
			t.Errorf("GET /dead-letters with %q = %d, want %d", tt.auth, res.StatusCode, tt.want)
		}
	}

	// Shutdown does not wait for an open stream.
	second := openStream(t, base, create(t, base))
	second.want(t, "PENDING")
	start := time.Now()
	cancel()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Run() = %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of cancel")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("shutdown took %v with a stream open", took)
	}
}

func create(t *testing.T, base string) string {
	t.Helper()
	res, err := http.Post(base+"/orders", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got struct{ OrderID string }
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil || res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /orders = %d, %v", res.StatusCode, err)
	}
	return got.OrderID
}

func getJSON(t *testing.T, u string, wantStatus int, v any) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != wantStatus {
		t.Fatalf("GET %s = %d, want %d", u, res.StatusCode, wantStatus)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

type stream struct{ r *bufio.Reader }

func openStream(t *testing.T, base, id string) *stream {
	t.Helper()
	res, err := http.Get(base + "/orders/" + id + "/stream")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("open stream: %v", err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return &stream{r: bufio.NewReader(res.Body)}
}

// want reads up to the next status event and checks its status.
func (s *stream) want(t *testing.T, status string) {
	t.Helper()
	done := make(chan string, 1)
	go func() {
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				done <- "error: " + err.Error()
				return
			}
			if strings.HasPrefix(line, "data: ") {
				done <- line
				return
			}
		}
	}()
	select {
	case line := <-done:
		if !strings.Contains(line, `"status":"`+status+`"`) {
			t.Fatalf("stream sent %q, want status %s", line, status)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s on the stream within 10s", status)
	}
}

// clearEnv unsets, for the test, every variable LoadConfig reads (make test exports the
// stack's addresses, which would otherwise override the defaults under test).
func clearEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ORDER_") || k == "ADMIN_TOKEN" || k == "CONNECT_URL" {
			t.Setenv(k, "") // restores the value after the test
			os.Unsetenv(k)
		}
	}
}

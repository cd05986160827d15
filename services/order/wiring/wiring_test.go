package wiring_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/customer"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/messaging/service/servicetest"
	"outboxsaga.dev/order/wiring"
)

const body = `{"customerId":"U1","currency":"KRW","paymentToken":"tok_ok","items":[{"sku":"A100","qty":1}]}`

// TestLoadConfig: the order service's own settings from ORDER_*, beside the shared ones
// (service.Load is tested in the messaging module).
func TestLoadConfig(t *testing.T) {
	servicetest.ClearEnv(t, "ORDER_")
	t.Setenv("CUSTOMER_TOKEN_PUBLIC_KEY", "k")
	cfg, err := wiring.LoadConfig()
	if err != nil || cfg.HTTPAddr != "127.0.0.1:8080" || cfg.SagaDeadline != 30*time.Second || cfg.SweepInterval != time.Second ||
		cfg.TimelineRetention != 0 || cfg.MaxOpenOrders != 100 || cfg.CustomerRate != 50 || cfg.CustomerBurst != 100 ||
		cfg.CustomerTokenPublicKey != "k" {
		t.Fatalf("LoadConfig() = %+v, %v", cfg, err)
	}
	t.Setenv("ORDER_CUSTOMER_BURST", "0")
	if _, err := wiring.LoadConfig(); err == nil {
		t.Fatal("LoadConfig() with a zero burst = nil error")
	}
	t.Setenv("ORDER_CUSTOMER_BURST", "100")
	t.Setenv("ORDER_SAGA_DEADLINE", "5s")
	if cfg, err = wiring.LoadConfig(); err != nil || cfg.SagaDeadline != 5*time.Second {
		t.Fatalf("LoadConfig() with ORDER_SAGA_DEADLINE=5s = %v, %v", cfg.SagaDeadline, err)
	}
	t.Setenv("ORDER_SAGA_DEADLINE", "0s")
	if _, err := wiring.LoadConfig(); err == nil {
		t.Fatal("LoadConfig() with a zero saga deadline = nil error")
	}
	t.Setenv("ORDER_SAGA_DEADLINE", "5s")
	t.Setenv("ORDER_TIMELINE_RETENTION", "-1h")
	if _, err := wiring.LoadConfig(); err == nil {
		t.Fatal("LoadConfig() with a negative timeline retention = nil error")
	}
	t.Setenv("ORDER_TIMELINE_RETENTION", "1h")
	for _, tt := range []struct {
		name, maxStreams, lifetime string
		ok                         bool
	}{
		{"defaults", "", "", true},
		{"set", "5", "1m", true},
		{"no streams", "0", "", false},
		{"no lifetime", "", "0s", false},
	} {
		for name, v := range map[string]string{"ORDER_MAX_STREAMS": tt.maxStreams, "ORDER_STREAM_LIFETIME": tt.lifetime} {
			t.Setenv(name, v)
			if v == "" {
				os.Unsetenv(name)
			}
		}
		cfg, err := wiring.LoadConfig()
		if (err == nil) != tt.ok {
			t.Errorf("%s: LoadConfig() = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if tt.name == "defaults" && (cfg.MaxStreams != 1000 || cfg.StreamLifetime != 10*time.Minute) {
			t.Errorf("defaults: MaxStreams %d, StreamLifetime %v; want 1000, 10m", cfg.MaxStreams, cfg.StreamLifetime)
		}
	}
}

// TestRun starts the whole service on a throwaway database. Kafka points at a closed port: the
// consumer keeps retrying (and /readyz says so) while HTTP, the sweeper and the status stream
// work, and a test never joins the real consumer group.
func TestRun(t *testing.T) {
	_, dbURL := pgtest.MustOpenTestDBURL(t)
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := customer.Sign(key, "U1", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg := wiring.Config{
		CustomerTokenPublicKey: base64.StdEncoding.EncodeToString(der),
		MaxOpenOrders:          10,
		CustomerRate:           50,
		CustomerBurst:          100,
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
	base, stop := servicetest.Start(t, func(ctx context.Context, ln net.Listener) error {
		return wiring.Run(ctx, cfg, ln, zerolog.New(io.Discard))
	})
	// The operator prices the SKU first (PUT /prices is behind the admin token).
	servicetest.Expect(t, base,
		servicetest.Request{Method: http.MethodPut, Path: "/prices/A100", Body: `{"unitPrice":15000,"currency":"KRW"}`, Want: http.StatusUnauthorized},
		servicetest.Request{Method: http.MethodPut, Path: "/prices/A100", Auth: "Bearer s3cret", Body: `{"unitPrice":15000,"currency":"KRW"}`, Want: http.StatusOK},
	)

	// An order nobody answers times out: the sweeper cancels it and the stream sees it.
	servicetest.Expect(t, base,
		servicetest.Request{Method: http.MethodPost, Path: "/orders", Body: body, Want: http.StatusUnauthorized},
	)
	first := create(t, base, tok)
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
	servicetest.Expect(t, base,
		servicetest.Request{Method: http.MethodGet, Path: "/dead-letters", Want: http.StatusUnauthorized},
		servicetest.Request{Method: http.MethodGet, Path: "/dead-letters", Auth: "Bearer wrong", Want: http.StatusUnauthorized},
		servicetest.Request{Method: http.MethodGet, Path: "/dead-letters", Auth: "Bearer s3cret", Want: http.StatusOK},
	)

	// Shutdown does not wait for an open stream.
	second := openStream(t, base, create(t, base, tok))
	second.want(t, "PENDING")
	if took := stop(); took > 3*time.Second {
		t.Fatalf("shutdown took %v with a stream open", took)
	}
}

// create places an order as the customer of token tok.
func create(t *testing.T, base, tok string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/orders", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
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

// getJSON reads u as the operator (who may read any order).
func getJSON(t *testing.T, u string, wantStatus int, v any) {
	t.Helper()
	res, err := operatorGet(u)
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

// operatorGet is GET u with the operator token of TestRun.
func operatorGet(u string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer s3cret")
	return http.DefaultClient.Do(req)
}

type stream struct{ r *bufio.Reader }

func openStream(t *testing.T, base, id string) *stream {
	t.Helper()
	res, err := operatorGet(base + "/orders/" + id + "/stream")
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

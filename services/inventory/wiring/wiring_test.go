package wiring_test

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/rs/zerolog"

	"outboxsaga.dev/inventory/wiring"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/messaging/service/servicetest"
)

// TestLoadConfig: the shared settings come from INVENTORY_* with the defaults of the native stack
// (service.Load is tested in the messaging module); a configuration Run cannot use stops it.
func TestLoadConfig(t *testing.T) {
	servicetest.ClearEnv(t, "INVENTORY_")
	cfg, err := wiring.LoadConfig()
	if err != nil || cfg.HTTPAddr != "127.0.0.1:8081" || cfg.ConsumerGroup != "inventory-service" || cfg.Connector != "inventory-outbox" {
		t.Fatalf("LoadConfig() = %+v, %v", cfg, err)
	}
	t.Setenv("INVENTORY_HANDLER_MAX_ATTEMPTS", "-1")
	if cfg, err = wiring.LoadConfig(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := wiring.Run(context.Background(), cfg, ln, zerolog.Nop()); err == nil {
		t.Fatal("Run() with INVENTORY_HANDLER_MAX_ATTEMPTS=-1 = nil error")
	}
}

// TestRun starts the whole service on a throwaway database. Kafka points at a closed port: the
// consumer keeps retrying (and /readyz says so) while HTTP serves, and a test never joins the
// real consumer group.
func TestRun(t *testing.T) {
	_, dbURL := pgtest.MustOpenTestDBURL(t)
	cfg := wiring.Config{Config: service.Config{
		DatabaseURL: dbURL, KafkaBrokers: []string{"127.0.0.1:1"}, ConsumerGroup: "inventory-test",
		AdminToken: "s3cret", HandlerMaxAttempts: 1, DBMaxOpenConns: 5,
	}}
	base, _ := servicetest.Start(t, func(ctx context.Context, ln net.Listener) error { return wiring.Run(ctx, cfg, ln, zerolog.Nop()) })
	servicetest.Expect(t, base,
		servicetest.Request{Method: http.MethodGet, Path: "/healthz", Want: http.StatusOK, WantBody: `"ok"`},
		servicetest.Request{Method: http.MethodPut, Path: "/stock/A100", Body: `{"available": 3}`, Want: http.StatusUnauthorized},
		servicetest.Request{Method: http.MethodPut, Path: "/stock/A100", Auth: "Bearer s3cret", Body: `{"available": 3}`, Want: http.StatusOK},
		servicetest.Request{Method: http.MethodGet, Path: "/stock/A100", Want: http.StatusOK, WantBody: `"available":3`},
		servicetest.Request{Method: http.MethodGet, Path: "/readyz", Want: http.StatusServiceUnavailable, WantBody: `"failed":{"kafka":`},
		servicetest.Request{Method: http.MethodGet, Path: "/metrics", Want: http.StatusOK, WantBody: `inventory_reservations_total{outcome="reserved"} 0`},
		servicetest.Request{Method: http.MethodGet, Path: "/dead-letters", Want: http.StatusUnauthorized},
		servicetest.Request{Method: http.MethodGet, Path: "/dead-letters", Auth: "Bearer s3cret", Want: http.StatusOK},
	)
}

package wiring_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/messaging/service/servicetest"
	"outboxsaga.dev/shipping/wiring"
)

// TestLoadConfig: SHIPPING_* with the native stack's defaults (service.Load is tested in the
// messaging module), and a step of 2 s unless SHIPPING_ADVANCE_AFTER says otherwise.
func TestLoadConfig(t *testing.T) {
	servicetest.ClearEnv(t, "SHIPPING_")
	for _, tt := range []struct {
		advanceAfter string // the first case reads the default
		want         time.Duration
		wantErr      bool
	}{
		{advanceAfter: "", want: 2 * time.Second},
		{advanceAfter: "250ms", want: 250 * time.Millisecond},
		{advanceAfter: "0s", want: 0},
		{advanceAfter: "soon", wantErr: true},
	} {
		if tt.advanceAfter != "" {
			t.Setenv("SHIPPING_ADVANCE_AFTER", tt.advanceAfter)
		}
		cfg, err := wiring.LoadConfig()
		if (err != nil) != tt.wantErr || cfg.AdvanceAfter != tt.want && !tt.wantErr {
			t.Errorf("SHIPPING_ADVANCE_AFTER=%q: LoadConfig() = %s, %v; want %s, error %v", tt.advanceAfter, cfg.AdvanceAfter, err, tt.want, tt.wantErr)
		}
		if !tt.wantErr && (cfg.HTTPAddr != "127.0.0.1:8084" || cfg.ConsumerGroup != "shipping-service" || cfg.Connector != "shipping-outbox" || cfg.ReplicationSlot != "shipping_outbox") {
			t.Errorf("LoadConfig() = %+v: not the stack's defaults for shipping on 8084", cfg.Config)
		}
	}
}

// TestRun starts the whole service on a throwaway database. Kafka points at a closed port: the
// consumer keeps retrying (and /readyz says so) while HTTP serves and the carrier runs.
func TestRun(t *testing.T) {
	_, dbURL := pgtest.MustOpenTestDBURL(t)
	cfg := wiring.Config{AdvanceAfter: time.Second, Config: service.Config{
		DatabaseURL: dbURL, KafkaBrokers: []string{"127.0.0.1:1"}, ConsumerGroup: "shipping-test",
		AdminToken: "s3cret", HandlerMaxAttempts: 1, DBMaxOpenConns: 5,
	}}
	base, _ := servicetest.Start(t, func(ctx context.Context, ln net.Listener) error { return wiring.Run(ctx, cfg, ln, zerolog.Nop()) })
	order := "/deliveries/" + uuid.NewString()
	servicetest.Expect(t, base,
		servicetest.Request{Method: http.MethodGet, Path: "/healthz", Want: http.StatusOK, WantBody: `"ok"`},
		// Without CUSTOMER_TOKEN_PUBLIC_KEY only operators may read deliveries.
		servicetest.Request{Method: http.MethodGet, Path: order, Want: http.StatusForbidden, WantBody: `"code":"forbidden"`},
		servicetest.Request{Method: http.MethodGet, Path: order, Auth: "Bearer s3cret", Want: http.StatusNotFound, WantBody: `"code":"not_found"`},
		servicetest.Request{Method: http.MethodPost, Path: order + "/advance", Want: http.StatusUnauthorized},
		servicetest.Request{Method: http.MethodPost, Path: order + "/advance", Auth: "Bearer s3cret", Want: http.StatusNotFound},
		servicetest.Request{Method: http.MethodGet, Path: "/readyz", Want: http.StatusServiceUnavailable, WantBody: `"failed":{"kafka":`},
		servicetest.Request{Method: http.MethodGet, Path: "/metrics", Want: http.StatusOK, WantBody: `shipping_delivery_steps_total{status="SHIPPED"} 0`},
		servicetest.Request{Method: http.MethodGet, Path: "/dead-letters", Auth: "Bearer s3cret", Want: http.StatusOK},
	)
}

package wiring_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/messaging/service/servicetest"
	"outboxsaga.dev/payment/wiring"
)

// TestLoadConfig: the gateway settings from PAYMENT_*, beside the shared ones (service.Load is
// tested in the messaging module).
func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    func(wiring.Config) bool
		wantErr bool
	}{
		{name: "defaults", want: func(c wiring.Config) bool {
			return c.HTTPAddr == "127.0.0.1:8082" && c.ConsumerGroup == "payment-service" && c.GatewayURL == "http://127.0.0.1:8089" &&
				c.GatewayTimeout == 2*time.Second && c.GatewayAttempts == 4
		}},
		{name: "overrides", env: map[string]string{"PAYMENT_GATEWAY_TIMEOUT": "500ms", "PAYMENT_GATEWAY_ATTEMPTS": "2"},
			want: func(c wiring.Config) bool { return c.GatewayTimeout == 500*time.Millisecond && c.GatewayAttempts == 2 }},
		{name: "no attempts", env: map[string]string{"PAYMENT_GATEWAY_ATTEMPTS": "0"}, wantErr: true},
		{name: "bad duration", env: map[string]string{"PAYMENT_GATEWAY_TIMEOUT": "soon"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			servicetest.ClearEnv(t, "PAYMENT_")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got, err := wiring.LoadConfig()
			if (err != nil) != tt.wantErr || err == nil && !tt.want(got) {
				t.Fatalf("LoadConfig = %+v, %v (want error %v)", got, err, tt.wantErr)
			}
		})
	}
}

// TestRun starts the whole service on a test database, with Kafka and the gateway unreachable
// (so it touches nothing real), and stops it.
func TestRun(t *testing.T) {
	db, dbURL := pgtest.MustOpenTestDBURL(t)
	cfg := wiring.Config{
		Config: service.Config{
			DatabaseURL: dbURL, KafkaBrokers: []string{"127.0.0.1:1"}, ConsumerGroup: "payment-app-test",
			LogLevel: "debug", HandlerMaxAttempts: 1, AdminToken: "secret",
		},
		GatewayURL: "http://127.0.0.1:1", GatewayTimeout: time.Second, GatewayAttempts: 1,
	}
	base, _ := servicetest.Start(t, func(ctx context.Context, ln net.Listener) error {
		return wiring.Run(ctx, cfg, ln, zerolog.New(zerolog.NewTestWriter(t)))
	})
	// The first request waits until the service serves: its database is migrated then.
	servicetest.Expect(t, base, servicetest.Request{Method: http.MethodGet, Path: "/healthz", Want: http.StatusOK})
	poison := &messaging.Message{Record: messaging.Record{Topic: "order-events", Partition: 0, Offset: 42, Key: "o1", Value: []byte("not json")}}
	id, err := msgpg.NewDeadLetters(db, pgtest.MustOutbox(t)).Store(context.Background(), wiring.Service, poison, errors.New("decode envelope"), 1)
	if err != nil {
		t.Fatal(err)
	}
	replay := "/dead-letters/" + strconv.FormatInt(id, 10) + "/replay"
	servicetest.Expect(t, base,
		servicetest.Request{Method: http.MethodGet, Path: "/readyz", Want: http.StatusServiceUnavailable, WantBody: `"kafka"`},
		// Without CUSTOMER_TOKEN_PUBLIC_KEY only operators may read payments.
		servicetest.Request{Method: http.MethodGet, Path: "/payments/o1", Want: http.StatusForbidden, WantBody: `"forbidden"`},
		servicetest.Request{Method: http.MethodGet, Path: "/payments/o1", Auth: "Bearer secret", Want: http.StatusNotFound, WantBody: `"not_found"`},
		servicetest.Request{Method: http.MethodGet, Path: "/metrics", Want: http.StatusOK, WantBody: "go_goroutines"},
		servicetest.Request{Method: http.MethodGet, Path: "/dead-letters", Want: http.StatusUnauthorized, WantBody: `"unauthorized"`},
		servicetest.Request{Method: http.MethodGet, Path: "/dead-letters", Auth: "Bearer secret", Want: http.StatusOK, WantBody: `"offset":42`},
		servicetest.Request{Method: http.MethodPost, Path: replay, Want: http.StatusUnauthorized, WantBody: `"unauthorized"`},
		// The stored record still does not decode: the replay fails and the dead letter stays.
		servicetest.Request{Method: http.MethodPost, Path: replay, Auth: "Bearer secret", Want: http.StatusUnprocessableEntity},
	)
}

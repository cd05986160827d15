package wiring_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/service/servicetest"
	"outboxsaga.dev/notification/wiring"
)

// TestLoadConfig: the shared settings come from NOTIFICATION_* with the native stack's defaults;
// the webhook from NOTIFICATION_WEBHOOK_URL, else NOTIFY_WEBHOOK_URL, else the sink's.
func TestLoadConfig(t *testing.T) {
	servicetest.ClearEnv(t, "NOTIFICATION_")
	t.Setenv("NOTIFY_WEBHOOK_URL", "")
	if _, err := wiring.LoadConfig(); err == nil || !strings.Contains(err.Error(), "NOTIFICATION_WEBHOOK_SECRET") {
		t.Errorf("LoadConfig() without a webhook secret = %v, want an error naming NOTIFICATION_WEBHOOK_SECRET", err)
	}
	t.Setenv("NOTIFICATION_WEBHOOK_SECRET", "whsec_c2VjcmV0")
	for _, tc := range []struct{ prefixed, unprefixed, want string }{
		{"", "", "http://127.0.0.1:8088/hooks"},
		{"", "http://hooks.example/a", "http://hooks.example/a"},
		{"http://mine/b", "http://hooks.example/a", "http://mine/b"},
	} {
		t.Setenv("NOTIFICATION_WEBHOOK_URL", tc.prefixed)
		t.Setenv("NOTIFY_WEBHOOK_URL", tc.unprefixed)
		cfg, err := wiring.LoadConfig()
		if err != nil || cfg.WebhookURL != tc.want || cfg.WebhookTimeout.String() != "2s" || cfg.HTTPAddr != "127.0.0.1:8085" ||
			cfg.ConsumerGroup != "notification-service" || cfg.Connector != "notification-outbox" {
			t.Errorf("LoadConfig() with %q, %q = %+v, %v", tc.prefixed, tc.unprefixed, cfg, err)
		}
	}
	t.Setenv("NOTIFICATION_WEBHOOK_TIMEOUT", "0s")
	if _, err := wiring.LoadConfig(); err == nil {
		t.Error("LoadConfig() with a zero webhook timeout = nil error")
	}
}

// TestRun starts the whole service, configured from NOTIFICATION_* as on the stack, on a
// throwaway database. Kafka points at a closed port: the consumer keeps retrying (and /readyz
// says so) while HTTP serves. A webhook URL that is not one stops it from starting.
func TestRun(t *testing.T) {
	_, dbURL := pgtest.MustOpenTestDBURL(t)
	servicetest.ClearEnv(t, "NOTIFICATION_")
	for k, v := range map[string]string{"DATABASE_URL": dbURL, "KAFKA_BROKERS": "127.0.0.1:1", "CONSUMER_GROUP": "notification-test",
		"ADMIN_TOKEN": "s3cret", "HANDLER_MAX_ATTEMPTS": "1", "DB_MAX_OPEN_CONNS": "5", "CONNECT_STATUS_TOPIC": "", "WEBHOOK_URL": "127.0.0.1:1",
		"WEBHOOK_SECRET": "whsec_c2VjcmV0"} {
		t.Setenv("NOTIFICATION_"+k, v)
	}
	cfg, err := wiring.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	run := func(ctx context.Context, ln net.Listener) error { return wiring.Run(ctx, cfg, ln, zerolog.Nop()) }
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err != nil || run(context.Background(), ln) == nil {
		t.Fatalf("Run() with the webhook URL %q did not fail (%v)", cfg.WebhookURL, err)
	}
	cfg.WebhookURL = "http://127.0.0.1:1/hooks"
	base, _ := servicetest.Start(t, run)
	servicetest.Expect(t, base,
		servicetest.Request{Method: http.MethodGet, Path: "/healthz", Want: http.StatusOK, WantBody: `"ok"`},
		servicetest.Request{Method: http.MethodGet, Path: "/readyz", Want: http.StatusServiceUnavailable, WantBody: `"failed":{"kafka":`},
		servicetest.Request{Method: http.MethodGet, Path: "/metrics", Want: http.StatusOK, WantBody: `notification_sent_total{kind="alert"} 0`},
		servicetest.Request{Method: http.MethodGet, Path: "/notifications", Want: http.StatusUnauthorized},
		servicetest.Request{Method: http.MethodGet, Path: "/notifications?orderId=o1", Auth: "Bearer s3cret", Want: http.StatusOK, WantBody: `[]`},
		servicetest.Request{Method: http.MethodGet, Path: "/dead-letters", Auth: "Bearer s3cret", Want: http.StatusOK},
	)
}

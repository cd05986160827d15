package wiring_test

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/rs/zerolog"

	"outboxsaga.dev/catalog/wiring"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/messaging/service/servicetest"
)

// TestLoadConfig: CATALOG_* with the stack's defaults for catalog on 8086; the ranking's zone is
// Asia/Seoul unless RANKING_TZ (or CATALOG_RANKING_TZ) says otherwise, and a zone that does not
// exist stops the service before it starts.
func TestLoadConfig(t *testing.T) {
	servicetest.ClearEnv(t, "CATALOG_")
	t.Setenv("RANKING_TZ", "")
	cfg, err := wiring.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != "127.0.0.1:8086" || cfg.ConsumerGroup != "catalog-service" || cfg.Connector != "catalog-outbox" || cfg.ReplicationSlot != "catalog_outbox" {
		t.Errorf("LoadConfig() = %+v: not the stack's defaults for catalog on 8086", cfg.Config)
	}
	if z, err := cfg.Zone(); err != nil || z.String() != "Asia/Seoul" {
		t.Errorf("default zone = %v, %v; want Asia/Seoul", z, err)
	}
	t.Setenv("CATALOG_RANKING_TZ", "UTC")
	if cfg, err = wiring.LoadConfig(); err != nil || cfg.RankingTZ != "UTC" {
		t.Errorf("CATALOG_RANKING_TZ=UTC: %q, %v", cfg.RankingTZ, err)
	}
	cfg.RankingTZ = "Mars/Olympus"
	if _, err := cfg.Zone(); err == nil {
		t.Error("a zone that does not exist: no error")
	}
}

// TestRun starts the whole service on a throwaway database. Kafka points at a closed port: the
// consumer keeps retrying (and /readyz says so) while HTTP serves the read models.
func TestRun(t *testing.T) {
	_, dbURL := pgtest.MustOpenTestDBURL(t)
	cfg := wiring.Config{RankingTZ: "Asia/Seoul", Config: service.Config{
		DatabaseURL: dbURL, KafkaBrokers: []string{"127.0.0.1:1"}, ConsumerGroup: "catalog-test",
		AdminToken: "s3cret", HandlerMaxAttempts: 1, DBMaxOpenConns: 5,
	}}
	base, _ := servicetest.Start(t, func(ctx context.Context, ln net.Listener) error { return wiring.Run(ctx, cfg, ln, zerolog.Nop()) })
	servicetest.Expect(t, base,
		servicetest.Request{Method: http.MethodGet, Path: "/healthz", Want: http.StatusOK, WantBody: `"ok"`},
		servicetest.Request{Method: http.MethodGet, Path: "/products/NEVER", Want: http.StatusNotFound, WantBody: `"code":"not_found"`},
		servicetest.Request{Method: http.MethodGet, Path: "/rankings/daily?date=2026-12-07", Want: http.StatusOK, WantBody: `[]`},
		servicetest.Request{Method: http.MethodGet, Path: "/rankings/daily?limit=0", Want: http.StatusBadRequest, WantBody: `limit`},
		servicetest.Request{Method: http.MethodGet, Path: "/readyz", Want: http.StatusServiceUnavailable, WantBody: `"failed":{"kafka":`},
		servicetest.Request{Method: http.MethodGet, Path: "/dead-letters", Auth: "Bearer s3cret", Want: http.StatusOK},
	)
}

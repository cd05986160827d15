// Command webhooksink runs the webhook sink: the Slack-compatible endpoint the notification
// service POSTs to, standing for the outside world (docs/architecture.md, "Notifications").
//
// Configuration comes from the environment:
//
//	WEBHOOKSINK_ADDR         listen address (default 127.0.0.1:<its port in the stack table>)
//	WEBHOOKSINK_DATA_FILE    where every accepted POST is kept, one JSON line each, fsynced before
//	                         the answer (default $STACK_DIR/webhooksink/received.jsonl, STACK_DIR
//	                         defaulting to .stack in the working directory)
//	WEBHOOKSINK_FAIL_FIRST   refuse the first N POSTs of every key (default 0: never)
//	WEBHOOKSINK_FAIL_STATUS  the status of those refusals (default 503)
//	WEBHOOKSINK_SECRET       whsec_<base64 key>: every POST must carry a Standard Webhooks
//	                         signature by it (required: the sink refuses to start without it)
//	WEBHOOKSINK_READ_TOKEN   what GET /received wants as Authorization: Bearer <token> (required)
//	WEBHOOKSINK_MAX_KEYS     how many Idempotency-Keys it keeps, the oldest forgotten first
//	                         (default 100000)
//	WEBHOOKSINK_LOG_LEVEL    zerolog level (default info)
//	ALLOWED_HOSTS            Host names it answers to besides 127.0.0.1, localhost and [::1]
//	                         (WEBHOOKSINK_ALLOWED_HOSTS first)
//	MAX_CONNECTIONS          open connections at most (default 4096; WEBHOOKSINK_MAX_CONNECTIONS first)
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	msghttp "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/messaging/webhooksig"
	"outboxsaga.dev/stack"
	"outboxsaga.dev/webhooksink"
	"outboxsaga.dev/webhooksink/httpapi"
)

// config is the sink's configuration (WEBHOOKSINK_*).
type config struct {
	Addr string
	// DataFile keeps every accepted POST; empty: $STACK_DIR/webhooksink/received.jsonl.
	DataFile string `split_words:"true"`
	// FailFirst and FailStatus: a webhook that fails, then recovers (httpapi.Config).
	FailFirst  int    `split_words:"true"`
	FailStatus int    `split_words:"true" default:"503"`
	LogLevel   string `split_words:"true" default:"info"`
	// Secret verifies the POSTs' signatures; ReadToken opens GET /received (httpapi.Config).
	Secret    string
	ReadToken string `split_words:"true"`
	// MaxKeys bounds what the sink keeps (webhooksink.Open).
	MaxKeys int `split_words:"true" default:"100000"`
	// Limits are the server's Host allowlist and connection cap.
	msghttp.Limits
	level zerolog.Level // LogLevel, parsed
}

// ListenAddr is where the sink listens.
func (c config) ListenAddr() string { return c.Addr }

func main() { service.Main("webhooksink", load, run) }

// load reads WEBHOOKSINK_* and puts the data file under the stack's directory unless told.
func load() (cfg config, err error) {
	if err = envconfig.Process("webhooksink", &cfg); err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	cfg.Addr = cmp.Or(cfg.Addr, stack.Service("webhooksink").Addr())
	cfg.DataFile = cmp.Or(cfg.DataFile, filepath.Join(cmp.Or(os.Getenv("STACK_DIR"), ".stack"), "webhooksink", "received.jsonl"))
	if cfg.level, err = zerolog.ParseLevel(cfg.LogLevel); err != nil {
		return cfg, fmt.Errorf("read config: WEBHOOKSINK_LOG_LEVEL %q: %w", cfg.LogLevel, err)
	}
	switch {
	case cfg.Secret == "":
		return cfg, errors.New("read config: WEBHOOKSINK_SECRET is not set: a sink that cannot verify signatures would record whatever anyone posts")
	case cfg.ReadToken == "":
		return cfg, errors.New("read config: WEBHOOKSINK_READ_TOKEN is not set: GET /received would list every notification to anyone")
	case cfg.MaxKeys < 1:
		return cfg, errors.New("read config: WEBHOOKSINK_MAX_KEYS must be positive")
	}
	if _, err := webhooksig.ParseSecret(cfg.Secret); err != nil {
		return cfg, fmt.Errorf("read config: WEBHOOKSINK_SECRET: %w", err)
	}
	return cfg, nil
}

// run serves the sink on ln until ctx is done.
func run(ctx context.Context, cfg config, ln net.Listener, log zerolog.Logger) error {
	log = log.Level(cfg.level).With().Str("service", "webhooksink").Logger()
	store, loaded, err := webhooksink.Open(cfg.DataFile, cfg.MaxKeys)
	if err != nil {
		return err
	}
	defer store.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h, err := httpapi.NewHandler(store, httpapi.Config{FailFirst: cfg.FailFirst, FailStatus: cfg.FailStatus,
		Secret: cfg.Secret, ReadToken: cfg.ReadToken}, log, reg)
	if err != nil {
		return err
	}
	log.Info().Str("addr", ln.Addr().String()).Str("dataFile", cfg.DataFile).Int("records", loaded.Records).
		Int("keys", loaded.Keys).Int64("tornBytesCut", loaded.Torn).Int("failFirst", cfg.FailFirst).Int("maxKeys", cfg.MaxKeys).Msg("webhook sink started")
	err = msghttp.Serve(ctx, msghttp.NewServer(h, cfg.Limits), cfg.Limits.Listener(ln))
	log.Info().Err(err).Msg("webhook sink stopped")
	return err
}

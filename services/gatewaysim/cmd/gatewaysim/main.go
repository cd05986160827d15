// Command gatewaysim runs the payment-gateway simulator: the card gateway the payment service
// charges, standing for the outside world (docs/architecture.md, "Gateway simulator").
//
// Configuration comes from the environment:
//
//	GATEWAYSIM_ADDR            listen address (default 127.0.0.1:<its port in the stack table>)
//	GATEWAYSIM_TIMEOUT_DELAY   how long tok_timeout takes to approve (default 20s, longer than the payment service waits in all)
//	GATEWAYSIM_FLAKY_FAILURES  how many attempts of a key tok_flaky fails (default 2)
//	GATEWAYSIM_MERCHANT_SECRET the merchant's secret every /charges call must send as
//	                           `Authorization: Bearer <secret>` (required: the simulator refuses
//	                           to start without it)
//	GATEWAYSIM_LOG_LEVEL       zerolog level (default info)
//	ALLOWED_HOSTS              Host names it answers to besides 127.0.0.1, localhost and [::1]
//	                           (GATEWAYSIM_ALLOWED_HOSTS first)
//	MAX_CONNECTIONS            open connections at most (default 4096; GATEWAYSIM_MAX_CONNECTIONS first)
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"outboxsaga.dev/gatewaysim"
	"outboxsaga.dev/gatewaysim/httpapi"
	msghttp "outboxsaga.dev/messaging/httpapi"
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/stack"
)

// config is the simulator's configuration (GATEWAYSIM_*).
type config struct {
	Addr          string
	TimeoutDelay  time.Duration `split_words:"true" default:"20s"`
	FlakyFailures int           `split_words:"true" default:"2"`
	LogLevel      string        `split_words:"true" default:"info"`
	// Limits are the server's Host allowlist and connection cap.
	msghttp.Limits
	// MerchantSecret authenticates the merchant (the payment service, and the tools that read
	// the ledger) on every /charges call.
	MerchantSecret string `split_words:"true"`
}

// ListenAddr is where the simulator listens.
func (c config) ListenAddr() string { return c.Addr }

func main() { service.Main("gatewaysim", load, run) }

func load() (config, error) {
	var cfg config
	if err := envconfig.Process("gatewaysim", &cfg); err != nil {
		return config{}, fmt.Errorf("read config: %w", err)
	}
	cfg.Addr = cmp.Or(cfg.Addr, stack.Service("gatewaysim").Addr())
	if cfg.MerchantSecret == "" {
		return config{}, errors.New("read config: GATEWAYSIM_MERCHANT_SECRET is not set: a gateway without the merchant's secret would take charges and voids from anyone")
	}
	return cfg, nil
}

// run serves the simulator on ln until ctx is done.
func run(ctx context.Context, cfg config, ln net.Listener, log zerolog.Logger) error {
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("log level %q: %w", cfg.LogLevel, err)
	}
	log = log.Level(level).With().Str("service", "gatewaysim").Logger()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ledger := gatewaysim.NewLedger(gatewaysim.Config{TimeoutDelay: cfg.TimeoutDelay, FlakyFailures: cfg.FlakyFailures})
	h, err := httpapi.NewHandler(ledger, cfg.MerchantSecret, log, reg)
	if err != nil {
		return err
	}
	srv := msghttp.NewServer(h, cfg.Limits)
	// tok_timeout holds its answers on purpose, for longer than any write timeout; when the
	// simulator stops, the held requests end (503) instead of holding up the shutdown.
	srv.WriteTimeout = 0
	srv.BaseContext = func(net.Listener) context.Context { return ctx }

	log.Info().Str("addr", ln.Addr().String()).Dur("timeoutDelay", cfg.TimeoutDelay).
		Int("flakyFailures", cfg.FlakyFailures).Msg("gateway simulator started")
	err = msghttp.Serve(ctx, srv, cfg.Limits.Listener(ln))
	log.Info().Err(err).Msg("gateway simulator stopped")
	return err
}

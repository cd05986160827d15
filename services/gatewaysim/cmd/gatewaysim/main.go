// Command gatewaysim runs the payment-gateway simulator.
//
// Configuration comes from the environment:
//
//	GATEWAYSIM_ADDR            listen address (default 127.0.0.1:8089)
//	GATEWAYSIM_TIMEOUT_DELAY   how long tok_timeout takes to approve (default 20s, longer than the payment service waits in all)
//	GATEWAYSIM_FLAKY_FAILURES  how many attempts of a key tok_flaky fails (default 2)
//	GATEWAYSIM_LOG_LEVEL       zerolog level (default info)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"outboxsaga.dev/gatewaysim"
	"outboxsaga.dev/gatewaysim/httpapi"
)

type config struct {
	Addr          string        `default:"127.0.0.1:8089"`
	TimeoutDelay  time.Duration `split_words:"true" default:"20s"`
	FlakyFailures int           `split_words:"true" default:"2"`
	LogLevel      string        `split_words:"true" default:"info"`
}

func main() {
	if err := run(os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "gatewaysim: %v\n", err)
		os.Exit(1)
	}
}

func run(logOut io.Writer) error {
	var cfg config
	if err := envconfig.Process("gatewaysim", &cfg); err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("parse log level: %w", err)
	}
	log := zerolog.New(logOut).Level(level).With().Timestamp().Str("service", "gatewaysim").Logger()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ledger := gatewaysim.NewLedger(gatewaysim.Config{
		TimeoutDelay:  cfg.TimeoutDelay,
		FlakyFailures: cfg.FlakyFailures,
	})
	handler, err := httpapi.NewHandler(ledger, log, reg)
	if err != nil {
		return fmt.Errorf("build handler: %w", err)
	}

	srv := &http.Server{
		Addr:              cfg.Addr,
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		IdleTimeout:       time.Minute,
		// No WriteTimeout: tok_timeout holds responses on purpose.
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	errc := make(chan error, 1)
	go func() {
		log.Info().Str("addr", cfg.Addr).Dur("timeoutDelay", cfg.TimeoutDelay).
			Int("flakyFailures", cfg.FlakyFailures).Msg("listening")
		errc <- srv.ListenAndServe()
	}()

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	log.Info().Msg("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

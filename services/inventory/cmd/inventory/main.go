// Command inventory runs the inventory service: stock per SKU, and the saga steps that reserve,
// release and commit it for orders. Configuration comes from INVENTORY_* variables (see
// app.Config and docs/service-layout.md).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"outboxsaga.dev/inventory/app"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "inventory: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := app.LoadConfig()
	if err != nil {
		return err
	}
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("parse log level %q: %w", cfg.LogLevel, err)
	}
	log := zerolog.New(os.Stderr).Level(level).With().Timestamp().Str("service", app.Service).Logger()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return app.Run(ctx, cfg, log)
}

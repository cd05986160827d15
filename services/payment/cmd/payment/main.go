// Command payment runs the payment service: it charges orders whose stock is reserved
// (inventory-events), voids the charges of canceled orders (order-events), and serves
// GET /payments/{orderId}. Configuration comes from PAYMENT_* variables (see app.Config and
// docs/service-layout.md).
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"outboxsaga.dev/payment/app"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", app.Service, err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := app.LoadConfig()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return app.Run(ctx, cfg, ln, zerolog.New(os.Stderr).With().Timestamp().Logger())
}

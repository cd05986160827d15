// Command payment runs the payment service: it charges orders whose stock is reserved, voids the
// charges of canceled orders, and serves GET /payments/{orderId}. Configuration comes from
// PAYMENT_* variables (see app.Config).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"outboxsaga.dev/payment/app"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "payment: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := app.LoadConfig()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := zerolog.New(os.Stderr).With().Timestamp().Logger()
	return app.Run(ctx, cfg, log)
}

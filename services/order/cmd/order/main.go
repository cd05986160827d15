// Command order runs the order service: it places orders (POST /orders), ends them as the saga's
// events arrive from inventory-events and payment-events, cancels those past their deadline, and
// serves each order, its timeline and a status stream. Configuration comes from ORDER_* variables
// (see app.Config).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"outboxsaga.dev/order/app"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "order: %v\n", err)
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

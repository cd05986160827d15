// Command order runs the order service: it places orders (POST /orders), ends them as the saga's
// events arrive from inventory-events and payment-events, cancels those past their deadline, and
// serves each order, its timeline, its history, its past states and a status stream.
// Configuration comes from ORDER_* variables (see wiring.Config and docs/service-layout.md).
//
// `order migrate` applies the migrations (service.Main); `order rebuild [-swap]` rebuilds the
// projections from the event store and compares them (make rebuild; wiring.Rebuild): exit status 1
// when they differ.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/order/wiring"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "rebuild" {
		os.Exit(rebuild(os.Args[2:]))
	}
	service.Main(wiring.Service, wiring.LoadConfig, wiring.Run)
}

// rebuild runs `order rebuild` and returns its exit status.
func rebuild(args []string) int {
	cfg, err := wiring.LoadConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", wiring.Service, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := wiring.Rebuild(ctx, cfg, args, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", wiring.Service, err)
		return 1
	}
	return 0
}

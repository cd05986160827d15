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
	"os"

	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/order/wiring"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "rebuild" {
		os.Exit(service.Command(wiring.Service, wiring.LoadConfig, func(ctx context.Context, cfg wiring.Config) error {
			return wiring.Rebuild(ctx, cfg, os.Args[2:], os.Stdout)
		}))
	}
	service.Main(wiring.Service, wiring.LoadConfig, wiring.Run)
}

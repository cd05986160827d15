// Command catalog runs the catalog service: the products' sold-out state and units sold, and the
// daily best sellers, kept from inventory-events and order-events after the saga's commits.
// Configuration comes from CATALOG_* variables (see wiring.Config and docs/service-layout.md).
//
// `catalog migrate` applies the migrations (service.Main); `catalog rebuild` rebuilds the read
// models from the topics' first offsets into fresh tables and compares them (make rebuild;
// wiring.Rebuild): exit status 1 when they differ.
package main

import (
	"context"
	"os"
	_ "time/tzdata" // RANKING_TZ resolves where the system has no zoneinfo (the service's image)

	"outboxsaga.dev/catalog/wiring"
	"outboxsaga.dev/messaging/service"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "rebuild" {
		os.Exit(service.Command(wiring.Service, wiring.LoadConfig, func(ctx context.Context, cfg wiring.Config) error {
			return wiring.Rebuild(ctx, cfg, os.Stdout)
		}))
	}
	service.Main(wiring.Service, wiring.LoadConfig, wiring.Run)
}

// Command catalog runs the catalog service: the products' sold-out state and units sold, and the
// daily best sellers, kept from inventory-events and order-events after the saga's commits.
// Configuration comes from CATALOG_* variables (see wiring.Config and docs/service-layout.md).
package main

import (
	_ "time/tzdata" // RANKING_TZ resolves where the system has no zoneinfo (the service's image)

	"outboxsaga.dev/catalog/wiring"
	"outboxsaga.dev/messaging/service"
)

func main() { service.Main(wiring.Service, wiring.LoadConfig, wiring.Run) }

// Command inventory runs the inventory service: stock per SKU, and the saga steps that reserve,
// release and commit it for orders as their events arrive from order-events. Configuration
// comes from INVENTORY_* variables (see wiring.Config and docs/service-layout.md).
package main

import (
	"outboxsaga.dev/inventory/wiring"
	"outboxsaga.dev/messaging/service"
)

func main() { service.Main(wiring.Service, wiring.LoadConfig, wiring.Run) }

// Command shipping runs the shipping service: one delivery per completed order, scheduled as
// OrderCompleted arrives from order-events and moved PREPARING → SHIPPED → DELIVERED by a carrier
// simulator (or an operator). Configuration comes from SHIPPING_* variables (see app.Config and
// docs/service-layout.md).
package main

import (
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/shipping/app"
)

func main() { service.Main(app.Service, app.LoadConfig, app.Run) }

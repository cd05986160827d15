// Command shipping runs the shipping service: one delivery per completed order, scheduled as
// OrderCompleted arrives from order-events and moved PREPARING → SHIPPED → DELIVERED by a carrier
// simulator (or an operator). Configuration comes from SHIPPING_* variables (see wiring.Config and
// docs/service-layout.md).
package main

import (
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/shipping/wiring"
)

func main() { service.Main(wiring.Service, wiring.LoadConfig, wiring.Run) }

// Command order runs the order service: it places orders (POST /orders), ends them as the saga's
// events arrive from inventory-events and payment-events, cancels those past their deadline, and
// serves each order, its timeline and a status stream. Configuration comes from ORDER_* variables
// (see app.Config and docs/service-layout.md).
package main

import (
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/order/app"
)

func main() { service.Main(app.Service, app.LoadConfig, app.Run) }

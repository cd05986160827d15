// Command payment runs the payment service: it charges orders whose stock is reserved
// (inventory-events), voids the charges of canceled orders (order-events), and serves
// GET /payments/{orderId}. Configuration comes from PAYMENT_* variables (see wiring.Config and
// docs/service-layout.md).
package main

import (
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/payment/wiring"
)

func main() { service.Main(wiring.Service, wiring.LoadConfig, wiring.Run) }

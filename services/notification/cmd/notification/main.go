// Command notification runs the notification service: it tells customers about their orders
// (completed, canceled, shipped) and alerts operators (dead letters, orders the saga deadline
// canceled) through a Slack-compatible webhook, as the events arrive from order-events,
// shipping-events and dead-letter-events. Configuration comes from NOTIFICATION_* variables (see
// wiring.Config and docs/service-layout.md) and NOTIFY_WEBHOOK_URL.
package main

import (
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/notification/wiring"
)

func main() { service.Main(wiring.Service, wiring.LoadConfig, wiring.Run) }

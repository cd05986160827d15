package messaging

// The topics of the saga (DESIGN.md, "Topics, keys, envelope"). Debezium's outbox router sends
// each outbox row to the topic <aggregatetype>-events, so a service's aggregate type names the
// topic its events go to.
const (
	TopicOrder      = "order-events"
	TopicInventory  = "inventory-events"
	TopicPayment    = "payment-events"
	TopicShipping   = "shipping-events"
	TopicDeadLetter = "dead-letter-events"
	// TopicQuarantine is where a connector puts an outbox row whose aggregate type names another
	// service's topic (connectors/*.json, the "confine" RegexRouter; the Kafka header
	// quarantinedBy names the connector): never applied, the notification service alerts on it.
	TopicQuarantine = "quarantine-events"
)

// TopicOf returns the topic the events of aggregateType travel on (the outbox router's
// route.topic.replacement, ${routedByValue}-events, in connectors/*.json).
func TopicOf(aggregateType string) string {
	return aggregateType + "-events"
}

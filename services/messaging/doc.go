// Package messaging holds what every service shares about events, independent of Postgres and
// Kafka: the envelope that travels as the Kafka value, W3C trace context, the Message a consumer
// hands to a handler, handlers and middleware, a router by event type and version, and the marker
// for errors that must not be retried.
//
// Sub-packages: postgres (transactions, migrations, the outbox insert, the inbox check, dead
// letters) and kafka (the sarama consumer-group runtime and its middleware).
package messaging

// Package stack is the one table of the pipeline's programs and the infrastructure's ports: every
// name, port, database, topic and Kafka principal that differs from one program to the next is
// written here once. The services take their default port from it, tools/stackenv its defaults,
// and `go generate` in this module (cmd/render) renders from it every file of the repository that
// lists the programs: connectors/*.json, infra/kafka/acls*.conf, docker-compose.yml,
// scripts/stack.env (which scripts/lib.sh sources), infra/postgres/init.sh and
// infra/prometheus/prometheus.yml.
//
// Every port is the stack's at offset 0: scripts/lib.sh moves each by STACK_PORT_OFFSET.
package stack

import (
	"fmt"
	"strings"
)

// The infrastructure's ports (offset 0).
const (
	// PostgresPort is the PostgreSQL cluster's.
	PostgresPort = 5432
	// KafkaPort is the broker's client listener.
	KafkaPort = 9092
	// KafkaControllerPort is the KRaft controller's listener.
	KafkaControllerPort = 9093
	// ConnectPort is Kafka Connect's REST API.
	ConnectPort = 8083
	// PrometheusPort is Prometheus's web port.
	PrometheusPort = 9090
	// AlertmanagerPort is Alertmanager's web port (not its default 9093: Kafka's controller holds
	// it).
	AlertmanagerPort = 9094
	// ZipkinPort is the trace viewer's (make traces): Zipkin's UI and its span API.
	ZipkinPort = 9411
)

// ConnectGroup is the Kafka Connect workers' group.id (infra/connect/connect-distributed.properties):
// the stem of the transactional ids of exactly-once source (KIP-618).
const ConnectGroup = "outbox-saga-connect"

// The topics every saga service shares.
const (
	// DeadLetterTopic receives what a service could not apply; every connector may write it.
	DeadLetterTopic = "dead-letter-events"
	// QuarantineTopic receives an outbox row whose aggregate type names another service's topic
	// (the connector's "confine" router).
	QuarantineTopic = "quarantine-events"
)

// Kind says what a program of the stack is.
type Kind int

const (
	// Saga is a saga service: it owns a database (<name>_db) with an outbox streamed by its
	// connector (<name>-outbox, principal connect-<name>) and consumes Kafka as principal <name>.
	Saga Kind = iota + 1
	// Simulator stands for the outside world (a card gateway, a webhook receiver): no database,
	// no Kafka.
	Simulator
	// Console is the operator's console: it owns nothing and reads the others' public surfaces
	// (Kafka as the viewer), so it starts last.
	Console
)

// Program is one Go program of the stack: a row of the table.
type Program struct {
	// Name is the program's name: its directory under services/, its command, its compose
	// service, its Prometheus job; for a saga service also the stem of its database, roles,
	// connector and principals.
	Name string
	// Kind is Saga or Simulator.
	Kind Kind
	// Port is its HTTP port at offset 0.
	Port int
	// AddrVar is the environment variable of its listen address.
	AddrVar string
	// URLVar is the environment variable the tools and tests find it by.
	URLVar string
	// AggregateType is the aggregate type of the events it emits (its outbox rows'
	// aggregatetype): they go to the topic <AggregateType>-events. Empty: it emits none of its
	// own (only dead letters).
	AggregateType string
	// Consumes lists the topics it reads, in its ACL file's order.
	Consumes []string
	// ExtraTables are tables of its database that its connector streams besides the outbox (the
	// order service's event store).
	ExtraTables []string
	// MeasurementTypes are aggregate types of rows of its database that no service consumes: the
	// pipeline tests' (cdctest) and tools/cmd/cdccost's; its connector may write their topics.
	MeasurementTypes []string
	// Calls lists the simulators it calls: they start before it.
	Calls []string
}

// Programs returns the table: every Go program of the stack, in start order (the simulators
// before the services that call them); they stop in the reverse order.
func Programs() []Program {
	return []Program{
		{Name: "gatewaysim", Kind: Simulator, Port: 8089, AddrVar: "GATEWAYSIM_ADDR", URLVar: "GATEWAY_URL"},
		{Name: "webhooksink", Kind: Simulator, Port: 8088, AddrVar: "WEBHOOKSINK_ADDR", URLVar: "WEBHOOKSINK_URL"},
		{Name: "order", Kind: Saga, Port: 8080, AddrVar: "ORDER_HTTP_ADDR", URLVar: "ORDER_URL",
			AggregateType: "order", Consumes: []string{"inventory-events", "payment-events", "shipping-events"},
			ExtraTables: []string{"order_events"}, MeasurementTypes: []string{"cdctest", "cdccost"}},
		{Name: "inventory", Kind: Saga, Port: 8081, AddrVar: "INVENTORY_HTTP_ADDR", URLVar: "INVENTORY_URL",
			AggregateType: "inventory", Consumes: []string{"order-events"}},
		{Name: "payment", Kind: Saga, Port: 8082, AddrVar: "PAYMENT_HTTP_ADDR", URLVar: "PAYMENT_URL",
			AggregateType: "payment", Consumes: []string{"inventory-events", "order-events"}, Calls: []string{"gatewaysim"}},
		{Name: "shipping", Kind: Saga, Port: 8084, AddrVar: "SHIPPING_HTTP_ADDR", URLVar: "SHIPPING_URL",
			AggregateType: "shipping", Consumes: []string{"order-events"}},
		{Name: "notification", Kind: Saga, Port: 8085, AddrVar: "NOTIFICATION_HTTP_ADDR", URLVar: "NOTIFICATION_URL",
			Consumes: []string{"order-events", "shipping-events", DeadLetterTopic, QuarantineTopic}, Calls: []string{"webhooksink"}},
		{Name: "catalog", Kind: Saga, Port: 8086, AddrVar: "CATALOG_HTTP_ADDR", URLVar: "CATALOG_URL",
			Consumes: []string{"inventory-events", "order-events"}},
		{Name: "console", Kind: Console, Port: 8090, AddrVar: "CONSOLE_ADDR", URLVar: "CONSOLE_URL"},
	}
}

// Lookup returns the program called name.
func Lookup(name string) (Program, bool) {
	for _, p := range Programs() {
		if p.Name == name {
			return p, true
		}
	}
	return Program{}, false
}

// Service returns the program called name, and panics when the table has none: it is for names
// written in the code (stack.Service("shipping").Port), where a missing row is a programming error.
func Service(name string) Program {
	p, ok := Lookup(name)
	if !ok {
		panic(fmt.Sprintf("stack: no program %q in the table", name))
	}
	return p
}

// SagaServices returns the saga services of the table, in start order.
func SagaServices() []Program {
	var out []Program
	for _, p := range Programs() {
		if p.Kind == Saga {
			out = append(out, p)
		}
	}
	return out
}

// SagaTopics returns the topics of the saga, made before anything runs and kept for ever: every
// service's topic, the dead letters and the quarantine.
func SagaTopics() []string {
	var out []string
	for _, p := range SagaServices() {
		if t := p.Topic(); t != "" {
			out = append(out, t)
		}
	}
	return append(out, DeadLetterTopic, QuarantineTopic)
}

// HeartbeatTopics returns every connector's heartbeat topic.
func HeartbeatTopics() []string {
	var out []string
	for _, p := range SagaServices() {
		out = append(out, p.HeartbeatTopic())
	}
	return out
}

// TopicOf returns the topic the events of aggregateType travel on (the outbox router's
// route.topic.replacement, ${routedByValue}-events).
func TopicOf(aggregateType string) string { return aggregateType + "-events" }

// Env returns the prefix of the program's settings: its name in capitals (SHIPPING).
func (p Program) Env() string { return strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_")) }

// Addr returns its listen address on the native stack at offset 0 (127.0.0.1:<port>).
func (p Program) Addr() string { return fmt.Sprintf("127.0.0.1:%d", p.Port) }

// URL returns its base URL on the native stack at offset 0.
func (p Program) URL() string { return "http://" + p.Addr() }

// Topic returns the topic it writes ("" when it emits no events of its own).
func (p Program) Topic() string {
	if p.AggregateType == "" {
		return ""
	}
	return TopicOf(p.AggregateType)
}

// Database returns its database's name.
func (p Program) Database() string { return p.Name + "_db" }

// ConsumerPrincipal returns the Kafka principal its consumers log in as.
func (p Program) ConsumerPrincipal() string { return p.Name }

// ConsumerGroup returns its consumer group.
func (p Program) ConsumerGroup() string { return p.Name + "-service" }

// Connector returns its Debezium connector's name.
func (p Program) Connector() string { return p.Name + "-outbox" }

// ConnectorPrincipal returns the Kafka principal its connector produces as.
func (p Program) ConnectorPrincipal() string { return "connect-" + p.Name }

// ReplicationSlot returns its connector's replication slot.
func (p Program) ReplicationSlot() string { return p.Name + "_outbox" }

// HeartbeatTopic returns its connector's heartbeat topic (__debezium-heartbeat.<topic.prefix>).
func (p Program) HeartbeatTopic() string { return "__debezium-heartbeat." + p.Name }

// OffsetsTopic returns its connector's own offsets topic (the connector's offsets.storage.topic):
// the connector's producer writes its source offsets there (in the same transaction as its records
// under exactly-once source), and nowhere else, so no connector can move another's offsets.
func (p Program) OffsetsTopic() string { return "connect-offsets-" + p.Name }

// TransactionalID returns the transactional id of its connector's task under exactly-once source:
// <group>-<connector>-<task> (Kafka Connect's Worker.taskTransactionalId; one task, 0).
func (p Program) TransactionalID() string { return ConnectGroup + "-" + p.Connector() + "-0" }

// OffsetsTopics returns every connector's offsets topic (compacted, made before Connect runs).
func OffsetsTopics() []string {
	var out []string
	for _, p := range SagaServices() {
		out = append(out, p.OffsetsTopic())
	}
	return out
}

// ConnectorTopics returns the topics its connector may write besides its heartbeat topic and the
// quarantine: its own, the dead letters and its measurement topics.
func (p Program) ConnectorTopics() []string {
	var out []string
	if t := p.Topic(); t != "" {
		out = append(out, t)
	}
	out = append(out, DeadLetterTopic)
	for _, m := range p.MeasurementTypes {
		out = append(out, TopicOf(m))
	}
	return out
}
